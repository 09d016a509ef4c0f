package nftables

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubelab/kubelab/spec"
)

// Ruleset is the computed content of the proxy's table: a pure function of
// the desired state (Compute), which the executor turns into an nftables
// transaction (plan). Tests read it directly. Every slice and map is
// sorted or keyed so that equal states give equal rulesets.
type Ruleset struct {
	// Chains are every chain of the table by name: base chains (with a
	// hook) and regular chains.
	Chains map[string]Chain
	// Sets are every set by name. Dynamic sets (session affinity) have no
	// Elements: the kernel fills them.
	Sets map[string]Set
	// Maps are every verdict map by name, with their elements.
	Maps map[string]Map
}

// Chain is one chain: a base chain when Hook is set, with its rules in
// order, written in nft syntax.
type Chain struct {
	// Hook, Type and Priority make a base chain; all empty for a regular
	// chain.
	Hook, Type, Priority string
	// Rules are the chain's rules, in order.
	Rules []string
}

// Set is one set. Timeout > 0 with Dynamic makes it an affinity set whose
// elements the data plane adds (update @set) and which expire.
type Set struct {
	// Type is the nft key type, e.g. "ipv4_addr".
	Type string
	// Dynamic sets are filled by rules; Timeout is their elements' lifetime.
	Dynamic bool
	Timeout time.Duration
	// Elements are the static elements (nil for dynamic sets).
	Elements []string
}

// Map is one verdict map.
type Map struct {
	// Type is "key-type : verdict".
	Type string
	// Elements maps a key (nft concatenation, "10.96.0.1 . tcp . 80") to a
	// verdict ("goto service-ns/web/tcp/http").
	Elements map[string]string
}

// Names of the fixed chains, sets and maps (see doc.go for the design).
const (
	chainFilterInput      = "filter-input"
	chainFilterForward    = "filter-forward"
	chainFilterOutput     = "filter-output"
	chainNATPrerouting    = "nat-prerouting"
	chainNATOutput        = "nat-output"
	chainNATPostrouting   = "nat-postrouting"
	chainEndpointsCheck   = "service-endpoints-check"
	chainReject           = "reject-chain"
	chainServices         = "services"
	chainMarkMasq         = "mark-for-masquerade"
	chainMasquerading     = "masquerading"
	setNodePortIPs        = "nodeport-ips"
	mapServiceIPs         = "service-ips"
	mapServiceNodePorts   = "service-nodeports"
	mapNoEndpointServices = "no-endpoint-services"
	mapNoEndpointNodePort = "no-endpoint-nodeports"

	// masqueradeBit is the packet mark bit that asks the masquerading chain
	// to SNAT a packet, upstream's 0x4000.
	masqueradeBit = "0x4000"

	ipPortProto = "ipv4_addr . inet_proto . inet_service : verdict"
	portProto   = "inet_proto . inet_service : verdict"
)

// Compute builds the ruleset for state. It is pure. Service ports or
// addresses it cannot program (IPv6, an unknown protocol, a virtual
// address and port already claimed by another service port) are left out
// and reported in a *spec.PartialSyncError (spec.ErrUnsupported); the
// ruleset is valid either way.
func Compute(state spec.ProxyState) (*Ruleset, error) {
	p := computeParts(state, nil)
	return p.full(), p.err()
}

// parts is a ruleset split in what the Proxy diffs separately: the fixed
// chains, sets and maps (which depend on the node addresses only) and one
// fragment per service port. A fragment holds the service port's own
// chains and affinity sets and its elements of the shared maps (its Maps
// carry no Type).
type parts struct {
	fixed   *Ruleset
	frags   map[string]*fragment // by portID
	skipped []spec.SkippedServicePort
}

// fragment is one service port's share of the ruleset, with the input it
// was computed from (so that an unchanged service port can reuse it).
type fragment struct {
	sp spec.ServicePort
	rs *Ruleset
	// udp is set for UDP service ports, for the conntrack cleanup.
	udp *udpInfo
}

func (p parts) err() error {
	if len(p.skipped) > 0 {
		return &spec.PartialSyncError{Skipped: p.skipped}
	}
	return nil
}

// full merges the parts into one ruleset.
func (p parts) full() *Ruleset {
	rs := p.fixed.clone()
	for _, f := range p.frags {
		rs.merge(f.rs)
	}
	return rs
}

// computeParts computes the parts of state's ruleset. reuse, when not nil,
// returns an earlier fragment for a service port whose input is unchanged
// (or nil), which computeParts then takes instead of computing it again.
func computeParts(state spec.ProxyState, reuse func(id string, sp spec.ServicePort) *fragment) parts {
	p := parts{fixed: fixedRuleset(), frags: make(map[string]*fragment, len(state.Services))}
	nodeIPs := Set{Type: "ipv4_addr", Elements: []string{}}
	for _, a := range state.NodeAddresses {
		if a.Unmap().Is4() {
			nodeIPs.Elements = append(nodeIPs.Elements, a.Unmap().String())
		} else {
			p.skipped = append(p.skipped, spec.SkippedServicePort{Reason: "node address " + a.String()})
		}
	}
	slices.Sort(nodeIPs.Elements)
	nodeIPs.Elements = slices.Compact(nodeIPs.Elements)
	p.fixed.Sets[setNodePortIPs] = nodeIPs
	claimed := map[string]string{} // map element key → portID
	for _, sp := range state.Services {
		proto, ok := l4proto(sp.Protocol)
		if !ok {
			p.skipped = append(p.skipped, skippedPort(sp, fmt.Sprintf("protocol %q", sp.Protocol)))
			continue
		}
		id := portID(sp, proto)
		var f *fragment
		if reuse != nil {
			f = reuse(id, sp)
		}
		if f == nil {
			rs, udp, skipped := computeServicePort(state.NodeName, sp, proto, id)
			f = &fragment{sp: cloneServicePort(sp), rs: rs, udp: udp}
			p.skipped = append(p.skipped, skipped...)
		}
		// Two service ports claiming one virtual address and port: the
		// first keeps it, the second is left out whole.
		clash := ""
		for _, m := range f.rs.Maps {
			for key := range m.Elements {
				if owner, ok := claimed[key]; ok && owner != id {
					clash = fmt.Sprintf("%s already used by %s", key, owner)
				}
			}
		}
		if _, dup := p.frags[id]; dup {
			clash = "service port listed twice"
		}
		if clash != "" {
			p.skipped = append(p.skipped, skippedPort(sp, clash))
			continue
		}
		for _, m := range f.rs.Maps {
			for key := range m.Elements {
				claimed[key] = id
			}
		}
		p.frags[id] = f
	}
	return p
}

func skippedPort(sp spec.ServicePort, reason string) spec.SkippedServicePort {
	return spec.SkippedServicePort{Namespace: sp.Namespace, Name: sp.Name, PortName: sp.PortName, Reason: reason}
}

// fixedRuleset returns the chains, maps and sets every table has (with an
// empty nodeport-ips set).
func fixedRuleset() *Ruleset {
	rs := newRuleset()
	base := func(name, typ, hook, prio string, rules ...string) {
		rs.Chains[name] = Chain{Type: typ, Hook: hook, Priority: prio, Rules: rules}
	}
	// Rejects run in filter hooks before DNAT (priority dstnat-10 = -110)
	// on new connections only, so that a service without endpoints is
	// refused whichever way its traffic arrives.
	checkNew := "ct state new jump " + chainEndpointsCheck
	base(chainFilterInput, "filter", "input", "-110", checkNew)
	base(chainFilterForward, "filter", "forward", "-110", checkNew)
	base(chainFilterOutput, "filter", "output", "-110", checkNew)
	base(chainNATPrerouting, "nat", "prerouting", "dstnat", "jump "+chainServices)
	base(chainNATOutput, "nat", "output", "dstnat", "jump "+chainServices)
	base(chainNATPostrouting, "nat", "postrouting", "srcnat", "jump "+chainMasquerading)
	rs.Chains[chainEndpointsCheck] = Chain{Rules: []string{
		"ip daddr . meta l4proto . th dport vmap @" + mapNoEndpointServices,
		"ip daddr @" + setNodePortIPs + " meta l4proto . th dport vmap @" + mapNoEndpointNodePort,
	}}
	rs.Chains[chainReject] = Chain{Rules: []string{"meta l4proto tcp reject with tcp reset", "reject"}}
	rs.Chains[chainServices] = Chain{Rules: []string{
		"ip daddr . meta l4proto . th dport vmap @" + mapServiceIPs,
		"ip daddr @" + setNodePortIPs + " meta l4proto . th dport vmap @" + mapServiceNodePorts,
	}}
	rs.Chains[chainMarkMasq] = Chain{Rules: []string{"mark set mark or " + masqueradeBit}}
	rs.Chains[chainMasquerading] = Chain{Rules: []string{
		"mark and " + masqueradeBit + " == 0 return",
		"mark set mark xor " + masqueradeBit,
		"masquerade fully-random",
	}}
	rs.Sets[setNodePortIPs] = Set{Type: "ipv4_addr", Elements: []string{}}
	rs.Maps[mapServiceIPs] = Map{Type: ipPortProto, Elements: map[string]string{}}
	rs.Maps[mapServiceNodePorts] = Map{Type: portProto, Elements: map[string]string{}}
	rs.Maps[mapNoEndpointServices] = Map{Type: ipPortProto, Elements: map[string]string{}}
	rs.Maps[mapNoEndpointNodePort] = Map{Type: portProto, Elements: map[string]string{}}
	return rs
}

// computeServicePort computes the fragment of one service port: its
// chains, affinity sets and map elements, and for UDP what the conntrack
// cleanup needs.
func computeServicePort(node string, sp spec.ServicePort, proto, id string) (*Ruleset, *udpInfo, []spec.SkippedServicePort) {
	rs := newRuleset()
	var skipped []spec.SkippedServicePort
	elem := func(m, key, verdict string) {
		if rs.Maps[m].Elements == nil {
			rs.Maps[m] = Map{Elements: map[string]string{}}
		}
		rs.Maps[m].Elements[key] = verdict
	}
	internal := ipv4Only(sp.InternalEndpoints(node))
	var external []spec.Endpoint
	externalIPs := slices.Concat(sp.ExternalIPs, sp.LoadBalancerIPs)
	hasExternal := sp.NodePort != 0 || len(externalIPs) > 0
	if hasExternal {
		external = ipv4Only(sp.ExternalEndpoints(node))
	}
	// Endpoint chains, shared by the internal and external paths.
	var udp *udpInfo
	if proto == "udp" {
		udp = &udpInfo{nodePort: sp.NodePort, hasInternal: len(internal) > 0, hasExternal: len(external) > 0}
		for _, ip := range slices.Concat(sp.ClusterIPs, externalIPs) {
			if ip.Unmap().Is4() {
				udp.virtuals = append(udp.virtuals, netip.AddrPortFrom(ip.Unmap(), sp.Port))
			}
		}
	}
	for _, ep := range unionEndpoints(internal, external) {
		rs.addEndpoint(id, proto, sp.SessionAffinityTimeout, ep)
		if udp != nil {
			udp.targets = append(udp.targets, netip.AddrPortFrom(ep.Addr.Unmap(), ep.Port))
		}
	}
	// Without usable endpoints: reject, or drop when a traffic policy Local
	// is the reason (upstream's rule).
	anyUsable := len(ipv4Only(spec.ServicePort{Endpoints: sp.Endpoints}.InternalEndpoints(node))) > 0
	internalVerdict := "goto " + chainReject
	if sp.InternalTrafficPolicy == spec.TrafficPolicyLocal && anyUsable {
		internalVerdict = "drop"
	}
	if len(internal) > 0 {
		internalVerdict = "goto service-" + id
		rs.Chains["service-"+id] = Chain{Rules: balance(id, sp.SessionAffinityTimeout, internal, false)}
	}
	externalVerdict := "goto " + chainReject
	switch {
	case !hasExternal:
	case len(external) > 0:
		externalVerdict = "goto external-" + id
		rs.Chains["external-"+id] = Chain{Rules: balance(id, sp.SessionAffinityTimeout, external,
			sp.ExternalTrafficPolicy != spec.TrafficPolicyLocal)}
	case sp.ExternalTrafficPolicy == spec.TrafficPolicyLocal && anyUsable:
		externalVerdict = "drop"
	}
	port := strconv.Itoa(int(sp.Port))
	put := func(ips []netip.Addr, verdict string, hasEndpoints bool) {
		for _, ip := range ips {
			if !ip.Unmap().Is4() {
				skipped = append(skipped, skippedPort(sp, "address "+ip.String()))
				continue
			}
			key := ip.Unmap().String() + " . " + proto + " . " + port
			if hasEndpoints {
				elem(mapServiceIPs, key, verdict)
			} else {
				elem(mapNoEndpointServices, key, verdict)
			}
		}
	}
	put(sp.ClusterIPs, internalVerdict, len(internal) > 0)
	put(externalIPs, externalVerdict, len(external) > 0)
	if sp.NodePort != 0 {
		key := proto + " . " + strconv.Itoa(int(sp.NodePort))
		if len(external) > 0 {
			elem(mapServiceNodePorts, key, externalVerdict)
		} else {
			elem(mapNoEndpointNodePort, key, externalVerdict)
		}
	}
	return rs, udp, skipped
}

func newRuleset() *Ruleset {
	return &Ruleset{Chains: map[string]Chain{}, Sets: map[string]Set{}, Maps: map[string]Map{}}
}

// clone copies rs deeply enough for merge to add to the copy.
func (rs *Ruleset) clone() *Ruleset {
	out := &Ruleset{Chains: maps.Clone(rs.Chains), Sets: maps.Clone(rs.Sets), Maps: make(map[string]Map, len(rs.Maps))}
	for name, m := range rs.Maps {
		out.Maps[name] = Map{Type: m.Type, Elements: maps.Clone(m.Elements)}
	}
	return out
}

// merge adds other's chains, sets and map elements to rs; rs must already
// have other's maps.
func (rs *Ruleset) merge(other *Ruleset) {
	maps.Copy(rs.Chains, other.Chains)
	maps.Copy(rs.Sets, other.Sets)
	for name, m := range other.Maps {
		maps.Copy(rs.Maps[name].Elements, m.Elements)
	}
}

// cloneServicePort copies sp with its slices, for keeping.
func cloneServicePort(sp spec.ServicePort) spec.ServicePort {
	sp.ClusterIPs = slices.Clone(sp.ClusterIPs)
	sp.LoadBalancerIPs = slices.Clone(sp.LoadBalancerIPs)
	sp.ExternalIPs = slices.Clone(sp.ExternalIPs)
	sp.Endpoints = slices.Clone(sp.Endpoints)
	return sp
}

// sameServicePort reports whether a and b are equal inputs.
func sameServicePort(a, b spec.ServicePort) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.PortName == b.PortName &&
		a.Protocol == b.Protocol && a.Port == b.Port && a.NodePort == b.NodePort &&
		a.InternalTrafficPolicy == b.InternalTrafficPolicy && a.ExternalTrafficPolicy == b.ExternalTrafficPolicy &&
		a.SessionAffinityTimeout == b.SessionAffinityTimeout &&
		slices.Equal(a.ClusterIPs, b.ClusterIPs) && slices.Equal(a.LoadBalancerIPs, b.LoadBalancerIPs) &&
		slices.Equal(a.ExternalIPs, b.ExternalIPs) &&
		slices.Equal(a.Endpoints, b.Endpoints)
}

// addEndpoint adds the endpoint chain (and its affinity set) of ep.
func (rs *Ruleset) addEndpoint(id, proto string, affinity time.Duration, ep spec.Endpoint) {
	epID := endpointID(id, ep)
	rules := []string{
		// Hairpin: an endpoint reaching itself is masqueraded so that its
		// reply comes back through the node's conntrack.
		fmt.Sprintf("ip saddr %s jump %s", ep.Addr.Unmap(), chainMarkMasq),
	}
	if affinity > 0 {
		set := affinitySet(epID, affinity)
		rs.Sets[set] = Set{Type: "ipv4_addr", Dynamic: true, Timeout: affinity}
		rules = append(rules, fmt.Sprintf("update @%s { ip saddr }", set))
	}
	rules = append(rules, fmt.Sprintf("meta l4proto %s dnat to %s", proto, netip.AddrPortFrom(ep.Addr.Unmap(), ep.Port)))
	rs.Chains["endpoint-"+epID] = Chain{Rules: rules}
}

// balance returns the rules of a service or external chain: optional
// masquerade, then affinity lookups, then a random choice.
func balance(id string, affinity time.Duration, eps []spec.Endpoint, masquerade bool) []string {
	var rules []string
	if masquerade {
		rules = append(rules, "jump "+chainMarkMasq)
	}
	if affinity > 0 {
		for _, ep := range eps {
			epID := endpointID(id, ep)
			rules = append(rules, fmt.Sprintf("ip saddr @%s goto endpoint-%s", affinitySet(epID, affinity), epID))
		}
	}
	targets := make([]string, len(eps))
	for i, ep := range eps {
		targets[i] = fmt.Sprintf("%d : goto endpoint-%s", i, endpointID(id, ep))
	}
	return append(rules, fmt.Sprintf("numgen random mod %d vmap { %s }", len(eps), strings.Join(targets, " , ")))
}

func l4proto(p spec.Protocol) (string, bool) {
	switch p {
	case spec.ProtocolTCP, "":
		return "tcp", true
	case spec.ProtocolUDP:
		return "udp", true
	case spec.ProtocolSCTP:
		return "sctp", true
	}
	return "", false
}

// portID names a service port in chain names: namespace/name/proto/port.
func portID(sp spec.ServicePort, proto string) string {
	port := sp.PortName
	if port == "" {
		port = fmt.Sprint(sp.Port)
	}
	return fmt.Sprintf("%s/%s/%s/%s", sp.Namespace, sp.Name, proto, port)
}

func endpointID(id string, ep spec.Endpoint) string {
	return fmt.Sprintf("%s__%s/%d", id, ep.Addr.Unmap(), ep.Port)
}

// affinitySet names the affinity set of an endpoint; the timeout is part of
// the name so that a changed timeout makes a new set instead of altering
// one in place (which nft refuses).
func affinitySet(epID string, timeout time.Duration) string {
	return fmt.Sprintf("affinity-%ds-%s", int64(timeout.Round(time.Second)/time.Second), epID)
}

func ipv4Only(eps []spec.Endpoint) []spec.Endpoint {
	out := eps[:0:0]
	for _, ep := range eps {
		if ep.Addr.Unmap().Is4() {
			out = append(out, ep)
		}
	}
	return out
}

func unionEndpoints(a, b []spec.Endpoint) []spec.Endpoint {
	out := slices.Clone(a)
	for _, ep := range b {
		if !slices.ContainsFunc(out, func(o spec.Endpoint) bool { return o.Addr == ep.Addr && o.Port == ep.Port }) {
			out = append(out, ep)
		}
	}
	return out
}
