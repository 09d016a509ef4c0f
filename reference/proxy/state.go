package proxy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kubelab/kubelab/spec"
)

// DefaultAffinityTimeout is ClientIP session affinity's timeout when the
// Service does not set one: 3 hours, as upstream
// (corev1.DefaultClientIPServiceAffinitySeconds).
const DefaultAffinityTimeout = 10800 * time.Second

// BuildState computes node's ProxyState from the API's Services and
// EndpointSlices. It is pure: same inputs, same state (services sorted by
// namespace, name, port name). The rules, as upstream kube-proxy's:
//
//   - ExternalName services and headless services (clusterIP None) are not
//     proxied; neither are services without a cluster IP yet. These are not
//     reported as skipped: there is nothing to program.
//   - Each ServicePort becomes one spec.ServicePort with the service's
//     clusterIPs; NodePort only for types NodePort and LoadBalancer; the
//     LoadBalancer ingress IPs (status.loadBalancer.ingress[].ip) only for
//     type LoadBalancer; spec.externalIPs for every type;
//     externalTrafficPolicy only for externally accessible services (types
//     NodePort and LoadBalancer, or with external IPs);
//     ClientIP affinity with sessionAffinityConfig's timeout, else
//     DefaultAffinityTimeout.
//   - Endpoints come from the EndpointSlices labelled
//     kubernetes.io/service-name=<service> in the service's namespace, of
//     address type IPv4 or IPv6 (FQDN slices are ignored). A service port
//     takes, from each slice, the port with its name and protocol: the slice
//     port carries the resolved targetPort number, which is how a named
//     targetPort is resolved. Each endpoint contributes its first address
//     (the others are, per the API, the same pod). Several slices of one
//     service are merged; an address:port listed twice is kept once, Ready
//     if either copy is.
//   - Conditions: ready nil means true; serving nil means ready; terminating
//     nil means false.
//
// Service ports it cannot express (an invalid IP) are left out and listed
// in the second result.
func BuildState(node string, nodeAddrs []netip.Addr, services []*corev1.Service, epSlices []*discoveryv1.EndpointSlice) (spec.ProxyState, []spec.SkippedServicePort) {
	state := spec.ProxyState{NodeName: node, NodeAddresses: slices.Clone(nodeAddrs)}
	var skipped []spec.SkippedServicePort
	bySvc := map[[2]string][]*discoveryv1.EndpointSlice{}
	for _, s := range epSlices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" || s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		k := [2]string{s.Namespace, name}
		bySvc[k] = append(bySvc[k], s)
	}
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
			continue
		}
		skip := func(format string, args ...any) {
			skipped = append(skipped, spec.SkippedServicePort{Namespace: svc.Namespace, Name: svc.Name, Reason: fmt.Sprintf(format, args...)})
		}
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 {
			ips = []string{svc.Spec.ClusterIP}
		}
		var clusterIPs []netip.Addr
		bad := false
		for _, s := range ips {
			a, err := netip.ParseAddr(s)
			if err != nil {
				skip("cluster IP %q: %v", s, err)
				bad = true
				break
			}
			clusterIPs = append(clusterIPs, a)
		}
		if bad {
			continue
		}
		nodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
		var externalIPs []netip.Addr
		for _, s := range svc.Spec.ExternalIPs {
			a, err := netip.ParseAddr(s)
			if err != nil {
				skip("external IP %q: %v", s, err)
				continue
			}
			externalIPs = append(externalIPs, a)
		}
		// Externally accessible, as upstream's apiservice.ExternallyAccessible.
		external := nodePorts || len(externalIPs) > 0
		var lbIPs []netip.Addr
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if in.IP == "" {
					continue
				}
				a, err := netip.ParseAddr(in.IP)
				if err != nil {
					skip("load balancer IP %q: %v", in.IP, err)
					continue
				}
				lbIPs = append(lbIPs, a)
			}
		}
		var affinity time.Duration
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			affinity = DefaultAffinityTimeout
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
				affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
			}
		}
		itp := spec.TrafficPolicyCluster
		if p := svc.Spec.InternalTrafficPolicy; p != nil && *p == corev1.ServiceInternalTrafficPolicyLocal {
			itp = spec.TrafficPolicyLocal
		}
		etp := spec.TrafficPolicyCluster
		if external && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			etp = spec.TrafficPolicyLocal
		}
		for _, port := range svc.Spec.Ports {
			proto := port.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			sp := spec.ServicePort{
				Namespace: svc.Namespace, Name: svc.Name, PortName: port.Name,
				ClusterIPs: clusterIPs, LoadBalancerIPs: lbIPs, ExternalIPs: externalIPs,
				Protocol: spec.Protocol(proto), Port: uint16(port.Port),
				InternalTrafficPolicy: itp, ExternalTrafficPolicy: etp,
				SessionAffinityTimeout: affinity,
			}
			if nodePorts {
				sp.NodePort = uint16(port.NodePort)
			}
			sp.Endpoints = endpointsFor(bySvc[[2]string{svc.Namespace, svc.Name}], port.Name, proto)
			state.Services = append(state.Services, sp)
		}
	}
	slices.SortFunc(state.Services, func(a, b spec.ServicePort) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.PortName, b.PortName), cmp.Compare(a.Protocol, b.Protocol))
	})
	return state, skipped
}

// endpointsFor merges the endpoints of every slice for the service port
// named portName.
func endpointsFor(epSlices []*discoveryv1.EndpointSlice, portName string, proto corev1.Protocol) []spec.Endpoint {
	var out []spec.Endpoint
	index := map[netip.AddrPort]int{}
	for _, s := range epSlices {
		var port uint16
		found := false
		for _, p := range s.Ports {
			pp := corev1.ProtocolTCP
			if p.Protocol != nil {
				pp = *p.Protocol
			}
			if p.Port != nil && ptrOr(p.Name, "") == portName && pp == proto {
				port, found = uint16(*p.Port), true
				break
			}
		}
		if !found {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil {
				continue
			}
			ready := ptrOr(e.Conditions.Ready, true)
			ep := spec.Endpoint{
				Addr: a, Port: port,
				Ready:       ready,
				Serving:     ptrOr(e.Conditions.Serving, ready),
				Terminating: ptrOr(e.Conditions.Terminating, false),
				NodeName:    ptrOr(e.NodeName, ""),
			}
			key := netip.AddrPortFrom(a, port)
			if i, dup := index[key]; dup {
				if ep.Ready && !out[i].Ready {
					out[i] = ep
				}
				continue
			}
			index[key] = len(out)
			out = append(out, ep)
		}
	}
	slices.SortFunc(out, func(a, b spec.Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
