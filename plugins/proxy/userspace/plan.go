package userspace

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/kubelab/kubelab/spec"
)

// Listener is one socket the proxy keeps open: a virtual address and port
// with the endpoints its connections go to.
type Listener struct {
	// Protocol is "tcp" or "udp".
	Protocol string
	// Addr is the virtual address and port listened on.
	Addr netip.AddrPort
	// Service names the service port, for logs.
	Service string
	// Endpoints are where new connections go, never empty.
	Endpoints []netip.AddrPort
	// Affinity, when > 0, is ClientIP session affinity's timeout.
	Affinity time.Duration
}

// Key identifies a listener's socket.
func (l Listener) Key() string { return l.Protocol + "/" + l.Addr.String() }

// Desired is the computed data plane of the userspace proxy.
type Desired struct {
	// Addresses must be local (cluster, external and LoadBalancer IPs,
	// assigned as /32), sorted.
	Addresses []netip.Addr
	// Listeners by Key. A virtual address and port without usable
	// endpoints has no listener: the kernel refuses connections to it (TCP
	// reset, ICMP port unreachable for UDP) because its address is local.
	Listeners map[string]Listener
	// Known are every endpoint of the state, usable or not: established
	// connections to them are kept.
	Known map[netip.AddrPort]bool
}

// Compute returns the desired data plane for state. It is pure. Service
// ports of a protocol other than TCP and UDP, IPv6 addresses, and a virtual
// address and port claimed twice are left out and reported in a
// *spec.PartialSyncError (spec.ErrUnsupported); the result is valid either
// way.
func Compute(state spec.ProxyState) (Desired, error) {
	d := Desired{Listeners: map[string]Listener{}, Known: map[netip.AddrPort]bool{}}
	var skipped []spec.SkippedServicePort
	skip := func(sp spec.ServicePort, format string, args ...any) {
		skipped = append(skipped, spec.SkippedServicePort{Namespace: sp.Namespace, Name: sp.Name, PortName: sp.PortName, Reason: fmt.Sprintf(format, args...)})
	}
	for _, sp := range state.Services {
		var proto string
		switch sp.Protocol {
		case spec.ProtocolTCP, "":
			proto = "tcp"
		case spec.ProtocolUDP:
			proto = "udp"
		default:
			skip(sp, "protocol %q", sp.Protocol)
			continue
		}
		for _, ep := range sp.Endpoints {
			d.Known[netip.AddrPortFrom(ep.Addr.Unmap(), ep.Port)] = true
		}
		externalIPs := slices.Concat(sp.ExternalIPs, sp.LoadBalancerIPs)
		for _, a := range slices.Concat(sp.ClusterIPs, externalIPs) {
			if a.Unmap().Is4() {
				d.Addresses = append(d.Addresses, a.Unmap())
			}
		}
		add := func(addr netip.AddrPort, eps []spec.Endpoint) {
			if !addr.Addr().Is4() {
				skip(sp, "address %s", addr.Addr())
				return
			}
			if len(eps) == 0 {
				return
			}
			l := Listener{Protocol: proto, Addr: addr, Service: sp.String(), Affinity: sp.SessionAffinityTimeout}
			for _, ep := range eps {
				l.Endpoints = append(l.Endpoints, netip.AddrPortFrom(ep.Addr.Unmap(), ep.Port))
			}
			if old, dup := d.Listeners[l.Key()]; dup {
				skip(sp, "%s already used by %s", l.Key(), old.Service)
				return
			}
			d.Listeners[l.Key()] = l
		}
		internal := sp.InternalEndpoints(state.NodeName)
		for _, ip := range sp.ClusterIPs {
			add(netip.AddrPortFrom(ip.Unmap(), sp.Port), internal)
		}
		if sp.NodePort == 0 && len(externalIPs) == 0 {
			continue
		}
		external := sp.ExternalEndpoints(state.NodeName)
		for _, ip := range externalIPs {
			add(netip.AddrPortFrom(ip.Unmap(), sp.Port), external)
		}
		if sp.NodePort != 0 {
			for _, ip := range state.NodeAddresses {
				add(netip.AddrPortFrom(ip.Unmap(), sp.NodePort), external)
			}
		}
	}
	slices.SortFunc(d.Addresses, netip.Addr.Compare)
	d.Addresses = slices.Compact(d.Addresses)
	if len(skipped) > 0 {
		return d, &spec.PartialSyncError{Skipped: skipped}
	}
	return d, nil
}
