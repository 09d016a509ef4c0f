package spec

import (
	"context"
	"net/netip"
	"time"
)

// Proxy is the service proxy contract: a node's data plane for Services.
//
// Sync makes the node send each Service's virtual addresses (its ClusterIPs
// and, on every node address, its NodePorts) to the service's ready
// endpoints, and nothing else. It receives the full desired state every time
// and must be idempotent: calling it twice with the same state changes
// nothing; a service or port absent from the state is removed. Sync is never
// called concurrently with itself or Cleanup.
//
// Cleanup removes everything the proxy ever installed on the node (tables,
// chains, listeners, addresses), including what an earlier process with the
// same configuration left behind after a crash.
type Proxy interface {
	Sync(ctx context.Context, state ProxyState) error
	Cleanup(ctx context.Context) error
}

// Protocol is a transport protocol for a service port.
type Protocol string

// Service port protocols.
const (
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolSCTP Protocol = "SCTP"
)

// ProxyState is the desired data plane of one node.
type ProxyState struct {
	// NodeAddresses are the node's own addresses, on which NodePorts listen.
	NodeAddresses []netip.Addr
	// Services are every service port to program, in any order.
	Services []ServicePort
}

// ServicePort is one port of one Service, with its endpoints.
type ServicePort struct {
	// Namespace and Name identify the Service; PortName is its port's name
	// (may be empty for a single-port service).
	Namespace, Name, PortName string
	// ClusterIPs are the service's virtual IPs (none for a headless service).
	ClusterIPs []netip.Addr
	// Protocol and Port are the virtual port.
	Protocol Protocol
	Port     uint16
	// NodePort, when non-zero, is also opened on every node address.
	NodePort uint16
	// SessionAffinityTimeout, when > 0, sends a client (by source IP) to the
	// same endpoint for that long (SessionAffinity ClientIP).
	SessionAffinityTimeout time.Duration
	// Endpoints are the backends. Only Ready ones may receive new traffic.
	Endpoints []Endpoint
}

// Endpoint is one backend of a ServicePort.
type Endpoint struct {
	// Addr and Port are where traffic goes.
	Addr netip.Addr
	Port uint16
	// Ready is the endpoint's readiness; unready endpoints get no traffic.
	Ready bool
	// NodeName is the node the endpoint runs on (may be empty).
	NodeName string
}

// ProxyConfig is what a proxy plugin is built with.
type ProxyConfig struct {
	// NodeName is the node the proxy programs.
	NodeName string
	// Options are plugin-specific key=value settings.
	Options map[string]string
}

// ProxyFactory builds a Proxy for one node.
type ProxyFactory func(ctx context.Context, cfg ProxyConfig) (Proxy, error)
