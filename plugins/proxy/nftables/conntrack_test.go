package nftables

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubelab/kubelab/spec"
)

func TestStaleFlows(t *testing.T) {
	ap := netip.MustParseAddrPort
	dns := func(eps ...spec.Endpoint) spec.ServicePort {
		return spec.ServicePort{Namespace: "ns", Name: "dns", ClusterIPs: []netip.Addr{ip("10.96.0.10")}, Protocol: spec.ProtocolUDP, Port: 53, NodePort: 30053, Endpoints: eps}
	}
	web := spec.ServicePort{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{ip("10.96.0.11")}, Protocol: spec.ProtocolTCP, Port: 80}
	frags := func(sps ...spec.ServicePort) map[string]*fragment {
		return computeParts(spec.ProxyState{NodeName: "a", Services: sps}, nil).frags
	}
	a, b := ep("10.244.0.2", "a", true), ep("10.244.0.3", "a", true)
	a.Port, b.Port = 53, 53

	// One endpoint leaves: its flows to the service (and NodePort) go.
	stale := flowFilter(staleFlows(frags(dns(a, b), web), frags(dns(b), web)))
	flow := func(dst, src string) *netlink.ConntrackFlow {
		d, s := ap(dst), ap(src)
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: unix.IPPROTO_UDP, DstIP: net.IP(d.Addr().AsSlice()), DstPort: d.Port()},
			Reverse: netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: net.IP(s.Addr().AsSlice()), SrcPort: s.Port()},
		}
	}
	for _, tc := range []struct {
		dst, src string
		want     bool
	}{
		{"10.96.0.10:53", "10.244.0.2:53", true},
		{"192.168.0.1:30053", "10.244.0.2:53", true},
		{"10.96.0.10:53", "10.244.0.3:53", false}, // the surviving endpoint
		{"10.96.0.99:53", "10.244.0.2:53", false}, // another service
	} {
		if got := stale.MatchConntrackFlow(flow(tc.dst, tc.src)); got != tc.want {
			t.Errorf("flow %s → %s stale = %v, want %v", tc.dst, tc.src, got, tc.want)
		}
	}
	tcp := flow("10.96.0.10:53", "10.244.0.2:53")
	tcp.Forward.Protocol = unix.IPPROTO_TCP
	if stale.MatchConntrackFlow(tcp) {
		t.Errorf("a TCP flow is stale")
	}
	// Endpoints appear: untranslated flows to the service go.
	stale = flowFilter(staleFlows(frags(dns()), frags(dns(a))))
	if !stale.MatchConntrackFlow(flow("10.96.0.10:53", "10.96.0.10:53")) {
		t.Errorf("a refused flow is kept after the service got endpoints")
	}
	// Nothing changes: nothing is stale.
	if got := staleFlows(frags(dns(a), web), frags(dns(a), web)); len(got) != 0 {
		t.Errorf("stale flows without a change: %+v", got)
	}
}
