package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// UDP has no connection to end, so conntrack keeps translating a client's
// flow to the endpoint it first chose, even after that endpoint left the
// service, and keeps a flow that was refused (before the service had
// endpoints) untranslated. As upstream, after each successful Sync the
// Proxy deletes the conntrack entries of UDP flows that would otherwise
// keep going to a removed endpoint or around a service that just got
// endpoints. (TCP needs nothing: a removed endpoint's connections end by
// themselves; new ones are balanced by the new rules.)

// udpInfo is what a UDP fragment records for the conntrack cleanup.
type udpInfo struct {
	// virtuals are the service port's cluster, external and LoadBalancer IPs with
	// its port; nodePort is its NodePort (0: none), on any node address.
	virtuals []netip.AddrPort
	nodePort uint16
	// targets are the endpoints traffic may be translated to, internal and
	// external; hasInternal/hasExternal tell whether each kind of traffic
	// had any.
	targets                  []netip.AddrPort
	hasInternal, hasExternal bool
}

// staleFlow matches the conntrack entries to delete: UDP flows to one of
// dsts (or, when nodePort is set, to that port on any address), translated
// to endpoint (any translation, or none, when endpoint is the zero value).
type staleFlow struct {
	dsts     []netip.AddrPort
	nodePort uint16
	endpoint netip.AddrPort
}

// staleFlows returns what to delete after going from prev to next: pure.
func staleFlows(prev, next map[string]*fragment) []staleFlow {
	var out []staleFlow
	for id, pf := range prev {
		p := pf.udp
		if p == nil {
			continue
		}
		var n *udpInfo
		if nf := next[id]; nf != nil {
			n = nf.udp
		}
		for _, ep := range p.targets {
			if n == nil || !slices.Contains(n.targets, ep) {
				out = append(out, staleFlow{dsts: p.virtuals, nodePort: p.nodePort, endpoint: ep})
			}
		}
	}
	for id, nf := range next {
		n := nf.udp
		if n == nil {
			continue
		}
		var p *udpInfo
		if pf := prev[id]; pf != nil {
			p = pf.udp
		}
		// Gained endpoints: flows refused before are not translated.
		if n.hasInternal && (p == nil || !p.hasInternal) && len(n.virtuals) > 0 {
			out = append(out, staleFlow{dsts: n.virtuals})
		}
		if n.hasExternal && n.nodePort != 0 && (p == nil || !p.hasExternal) {
			out = append(out, staleFlow{nodePort: n.nodePort})
		}
	}
	return out
}

// match reports whether a UDP flow with original destination dst, whose
// reply comes from src, is stale.
func (s staleFlow) match(dst, src netip.AddrPort) bool {
	if !slices.Contains(s.dsts, dst) && (s.nodePort == 0 || dst.Port() != s.nodePort) {
		return false
	}
	return !s.endpoint.IsValid() || s.endpoint == src
}

// flowFilter is a netlink conntrack filter over staleFlows.
type flowFilter []staleFlow

// MatchConntrackFlow is netlink.CustomConntrackFilter.
func (f flowFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dstIP, ok1 := netip.AddrFromSlice(flow.Forward.DstIP)
	srcIP, ok2 := netip.AddrFromSlice(flow.Reverse.SrcIP)
	if !ok1 || !ok2 {
		return false
	}
	dst := netip.AddrPortFrom(dstIP.Unmap(), flow.Forward.DstPort)
	src := netip.AddrPortFrom(srcIP.Unmap(), flow.Reverse.SrcPort)
	for _, s := range f {
		if s.match(dst, src) {
			return true
		}
	}
	return false
}

// Conntrack deletes conntrack entries; the Proxy calls it with the stale
// UDP flows after a successful Sync. nil means no cleanup (tests on the
// knftables fake).
type Conntrack interface {
	DeleteUDP(ctx context.Context, flows []staleFlow) (uint, error)
}

// netlinkConntrack deletes entries through netlink in the namespace at
// netns ("": the process's own).
type netlinkConntrack struct{ netns string }

func (c netlinkConntrack) DeleteUDP(_ context.Context, flows []staleFlow) (uint, error) {
	if len(flows) == 0 {
		return 0, nil
	}
	var n uint
	err := inNetns(c.netns, func() error {
		var err error
		n, err = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, flowFilter(flows))
		if err != nil {
			return fmt.Errorf("delete stale UDP conntrack entries: %w", err)
		}
		return nil
	})
	return n, err
}
