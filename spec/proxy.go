package spec

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Proxy is the service proxy contract: a node's data plane for Services,
// kube-proxy's role in the Kubernetes architecture. The proxy loop
// (reference/proxy) turns the API's Services and EndpointSlices into a
// ProxyState for its node and hands it to Sync; a Proxy only programs what
// it is given.
//
// Virtual addresses. For every ServicePort in the state, a Proxy accepts
// traffic to:
//   - each of its ClusterIPs on Port ("internal" traffic);
//   - each of its ExternalIPs and LoadBalancerIPs on Port ("external"
//     traffic);
//   - when NodePort is non-zero, each of the state's NodeAddresses on
//     NodePort ("external" traffic).
//
// Traffic of the port's Protocol to any other address or port is not the
// proxy's business and must pass untouched.
//
// Endpoints. Which endpoints may receive a new connection is decided by
// ServicePort.InternalEndpoints (internal traffic) and
// ServicePort.ExternalEndpoints (external traffic) and by nothing else; every
// plugin must use exactly those sets (they implement upstream kube-proxy's
// rules: ready endpoints, else serving-terminating ones; traffic policy
// Local restricts to this node's endpoints). A new connection (or, for UDP,
// a new flow) goes to one endpoint of the set, chosen at random or round
// robin, so that over many connections every endpoint of the set receives
// some. Endpoints outside the set receive no new connections. Connections
// established before a Sync keep their endpoint as long as it is still in
// the state (established connections are not re-balanced).
//
// No usable endpoint. When the set for a kind of traffic is empty, a new
// connection is rejected at once — a TCP reset (the client sees "connection
// refused") or an ICMP port/host unreachable — never silently dropped, so
// that clients fail fast instead of hanging until a timeout. The one
// exception is upstream's: when the set is empty only because of a traffic
// policy Local (the service has usable endpoints, on other nodes), new
// connections may be dropped instead (for external traffic, a load
// balancer's health check is expected to steer it elsewhere).
//
// Source address. Internal traffic and external traffic with
// ExternalTrafficPolicy Cluster may reach the endpoint from an address of the
// node (masquerade/SNAT), and must when the endpoint's reply would otherwise
// not come back through this node. Two cases are required:
//   - hairpin: an endpoint that reaches its own service and is chosen as the
//     backend sees a node address as source, so that its reply returns
//     through the proxy (CapProxyHairpin);
//   - external traffic with policy Cluster to an endpoint on another node is
//     masqueraded.
//
// External traffic with ExternalTrafficPolicy Local reaches the endpoint
// with the client's own source address (CapProxyExternalTrafficLocal).
//
// Session affinity. When SessionAffinityTimeout > 0 (Service
// sessionAffinity ClientIP), new connections from one client address go to
// the endpoint that client last used, as long as that endpoint is still in
// the usable set and the client's previous connection was less than the
// timeout ago; otherwise a new endpoint is chosen (CapProxySessionAffinity).
//
// Sync makes the node's data plane equal to state. It receives the full
// desired state every time and is idempotent: calling it twice with the same
// state changes nothing visible to traffic; a service, port, address or
// endpoint absent from state is removed. A state the plugin cannot program
// in part (an unsupported protocol or address family) is not a reason to
// drop the rest: Sync programs everything it can and returns a
// *PartialSyncError (which wraps ErrUnsupported) naming what it skipped;
// the caller treats that Sync as successful. A Sync that fails for any
// other reason leaves the data plane as the previous successful Sync left
// it, or fully at the new state — never half of each (nftables transactions
// are atomic; other plugins must order their changes so that a failure
// leaves the old state working). The caller retries a failed Sync with the
// next state. Sync may be slow (it is the proxy's whole work) but must
// return when ctx is done.
//
// Cleanup removes everything the proxy with this configuration ever
// installed on the node (tables, chains, listeners, addresses, links),
// including what an earlier process with the same configuration left behind
// after a crash, and stops its goroutines. It is safe to call when nothing
// is installed. After Cleanup the Proxy may be used again (a Sync reinstalls
// everything). Cleanup never touches anything it did not create: other
// proxies with another configuration (another table suffix) on the same node
// keep working.
//
// Concurrency: Sync and Cleanup are never called concurrently with each
// other or with themselves; a Proxy need not be safe for concurrent use.
//
// Ownership: Sync must not modify state and must not keep references to
// its slices after it returns (copy what it keeps): the caller may reuse
// and change them for the next Sync.
type Proxy interface {
	Sync(ctx context.Context, state ProxyState) error
	Cleanup(ctx context.Context) error
}

// SkippedServicePort is a part of a ProxyState that could not be
// programmed, and why.
type SkippedServicePort struct {
	// Namespace, Name and PortName identify the service port; all empty
	// when what was skipped is not a service's (a node address).
	Namespace, Name, PortName string
	// Reason says what was not supported, e.g. `address fd00::1`.
	Reason string
}

// PartialSyncError is what Sync returns when it programmed everything but
// Skipped. errors.Is(err, ErrUnsupported) holds for it; callers find the
// skipped parts with errors.As.
type PartialSyncError struct {
	// Skipped lists what was left out, in the order of the state.
	Skipped []SkippedServicePort
}

// Error lists the skipped parts.
func (e *PartialSyncError) Error() string {
	var b strings.Builder
	b.WriteString("proxy skipped ")
	for i, s := range e.Skipped {
		if i > 0 {
			b.WriteString("; ")
		}
		if s.Name != "" {
			fmt.Fprintf(&b, "%s/%s:%s: ", s.Namespace, s.Name, s.PortName)
		}
		b.WriteString(s.Reason)
	}
	b.WriteString(": ")
	b.WriteString(ErrUnsupported.Error())
	return b.String()
}

// Unwrap returns ErrUnsupported.
func (e *PartialSyncError) Unwrap() error { return ErrUnsupported }

// Protocol is a transport protocol for a service port.
type Protocol string

// Service port protocols, as in corev1.Protocol.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// TrafficPolicy is a Service's internalTrafficPolicy or
// externalTrafficPolicy. The empty value means Cluster.
type TrafficPolicy string

// Traffic policies, as in corev1.ServiceInternalTrafficPolicy and
// corev1.ServiceExternalTrafficPolicy.
const (
	// TrafficPolicyCluster: traffic may go to any usable endpoint of the
	// service, on any node.
	TrafficPolicyCluster TrafficPolicy = "Cluster"
	// TrafficPolicyLocal: traffic goes only to usable endpoints on the
	// proxy's own node (Endpoint.NodeName == ProxyState.NodeName).
	TrafficPolicyLocal TrafficPolicy = "Local"
)

// ProxyState is the desired data plane of one node.
type ProxyState struct {
	// NodeName is the node this state is for; endpoints with this NodeName
	// are "local" (traffic policy Local).
	NodeName string
	// NodeAddresses are the node's own addresses, on which NodePorts are
	// open. Empty means NodePorts are open nowhere.
	NodeAddresses []netip.Addr
	// Services are every service port to program, in any order; at most one
	// entry per (Namespace, Name, PortName, Protocol). Headless and
	// ExternalName services are never in it: they have no virtual IP.
	Services []ServicePort
}

// ServicePort is one port of one Service, with its endpoints for that port.
type ServicePort struct {
	// Namespace and Name identify the Service; PortName is its port's name
	// (empty for a single-port service).
	Namespace, Name, PortName string
	// ClusterIPs are the service's virtual IPs (spec.clusterIPs), at least
	// one.
	ClusterIPs []netip.Addr
	// LoadBalancerIPs are the service's load balancer ingress IPs
	// (status.loadBalancer.ingress[].ip), served like ClusterIPs but as
	// external traffic. Empty for services that are not of type
	// LoadBalancer or have no IP yet.
	LoadBalancerIPs []netip.Addr
	// ExternalIPs are the service's spec.externalIPs, served like
	// LoadBalancerIPs (external traffic). The cluster's network routes them
	// to the nodes; the proxy only accepts them.
	ExternalIPs []netip.Addr
	// Protocol and Port are the virtual port.
	Protocol Protocol
	Port     uint16
	// NodePort, when non-zero, is also open on every node address (types
	// NodePort and LoadBalancer).
	NodePort uint16
	// InternalTrafficPolicy governs traffic to the ClusterIPs; empty means
	// Cluster.
	InternalTrafficPolicy TrafficPolicy
	// ExternalTrafficPolicy governs traffic to the NodePort, the
	// ExternalIPs and the LoadBalancerIPs; empty means Cluster.
	ExternalTrafficPolicy TrafficPolicy
	// SessionAffinityTimeout, when > 0, is ClientIP session affinity with
	// that timeout (upstream's default is 3 hours); 0 means none.
	SessionAffinityTimeout time.Duration
	// Endpoints are every endpoint of the port, usable or not, in any order,
	// each address at most once.
	Endpoints []Endpoint
}

// String names the service port as "namespace/name:portName/protocol".
func (sp ServicePort) String() string {
	return fmt.Sprintf("%s/%s:%s/%s", sp.Namespace, sp.Name, sp.PortName, sp.Protocol)
}

// Endpoint is one backend of a ServicePort, with EndpointSlice conditions.
type Endpoint struct {
	// Addr and Port are where traffic goes (the port is already resolved
	// from the service's targetPort).
	Addr netip.Addr
	Port uint16
	// Ready: the endpoint accepts new connections (EndpointConditions.ready;
	// a nil condition means true). A terminating endpoint is never Ready.
	Ready bool
	// Serving: the endpoint would accept connections, whether or not it is
	// terminating (EndpointConditions.serving; nil means the value of Ready).
	Serving bool
	// Terminating: the endpoint is shutting down
	// (EndpointConditions.terminating; nil means false).
	Terminating bool
	// NodeName is the node the endpoint runs on (may be empty: then it is
	// local to no node).
	NodeName string
}

// InternalEndpoints returns the endpoints that may receive new internal
// traffic (to a ClusterIP) on node: the Ready endpoints; if there are none,
// the endpoints that are Serving and Terminating (upstream's terminating
// fallback, so that connections keep succeeding during a rolling update
// whose new pods are not ready yet). With InternalTrafficPolicy Local, the
// same rule is applied to the endpoints whose NodeName is node only. The
// result is in the order of sp.Endpoints and may be empty.
func (sp ServicePort) InternalEndpoints(node string) []Endpoint {
	return usable(sp.Endpoints, node, sp.InternalTrafficPolicy == TrafficPolicyLocal)
}

// ExternalEndpoints is InternalEndpoints for external traffic (NodePort,
// external and LoadBalancer IPs), governed by ExternalTrafficPolicy.
func (sp ServicePort) ExternalEndpoints(node string) []Endpoint {
	return usable(sp.Endpoints, node, sp.ExternalTrafficPolicy == TrafficPolicyLocal)
}

func usable(eps []Endpoint, node string, local bool) []Endpoint {
	var ready, fallback []Endpoint
	for _, ep := range eps {
		if local && (ep.NodeName == "" || ep.NodeName != node) {
			continue
		}
		switch {
		case ep.Ready && !ep.Terminating:
			ready = append(ready, ep)
		case ep.Serving && ep.Terminating:
			fallback = append(fallback, ep)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return fallback
}

// Optional proxy capabilities. What every proxy must do without a capability:
// TCP to ClusterIPs, readiness and the terminating fallback, reject without
// endpoints, and Cleanup.
const (
	// CapProxyUDP: UDP service ports work like TCP ones.
	CapProxyUDP Capability = "proxy:udp"
	// CapProxyNodePort: NodePorts are open on every node address.
	CapProxyNodePort Capability = "proxy:nodeport"
	// CapProxyLoadBalancer: LoadBalancerIPs are served.
	CapProxyLoadBalancer Capability = "proxy:loadbalancer"
	// CapProxyExternalIPs: ExternalIPs are served.
	CapProxyExternalIPs Capability = "proxy:external-ips"
	// CapProxySessionAffinity: ClientIP session affinity with its timeout.
	CapProxySessionAffinity Capability = "proxy:session-affinity"
	// CapProxyInternalTrafficLocal: InternalTrafficPolicy Local.
	CapProxyInternalTrafficLocal Capability = "proxy:internal-traffic-local"
	// CapProxyExternalTrafficLocal: ExternalTrafficPolicy Local, including
	// that the endpoint sees the client's own source address.
	CapProxyExternalTrafficLocal Capability = "proxy:external-traffic-local"
	// CapProxyHairpin: an endpoint reaching its own service through the
	// proxy gets its replies (it is masqueraded when it picks itself).
	CapProxyHairpin Capability = "proxy:hairpin"
)

// ProxyConfig is what a proxy plugin is built with.
type ProxyConfig struct {
	// NodeName is the node the proxy programs.
	NodeName string
	// Options are plugin-specific settings as key=value pairs, documented by
	// each plugin. Unknown keys are ErrInvalid.
	Options map[string]string
	// Logger receives the plugin's logs; nil means discard.
	Logger *slog.Logger
}

// ProxyFactory builds a Proxy for one node. It installs nothing: the first
// Sync does. A factory that cannot work on this host (no nftables, no
// privileges) returns an error saying so.
type ProxyFactory func(ctx context.Context, cfg ProxyConfig) (Proxy, error)
