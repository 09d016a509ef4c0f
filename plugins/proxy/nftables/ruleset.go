package nftables

import (
	"fmt"
	"net/netip"
	"slices"
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
// addresses it cannot program (IPv6, an unknown protocol) are left out and
// reported in a *spec.PartialSyncError (spec.ErrUnsupported); the ruleset is
// valid either way.
func Compute(state spec.ProxyState) (*Ruleset, error) {
	rs := &Ruleset{Chains: map[string]Chain{}, Sets: map[string]Set{}, Maps: map[string]Map{}}
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
	var skipped []spec.SkippedServicePort
	skip := func(sp spec.ServicePort, format string, args ...any) {
		skipped = append(skipped, spec.SkippedServicePort{Namespace: sp.Namespace, Name: sp.Name, PortName: sp.PortName, Reason: fmt.Sprintf(format, args...)})
	}
	nodeIPs := Set{Type: "ipv4_addr", Elements: []string{}}
	for _, a := range state.NodeAddresses {
		if a.Unmap().Is4() {
			nodeIPs.Elements = append(nodeIPs.Elements, a.Unmap().String())
		} else {
			skip(spec.ServicePort{}, "node address %s", a)
		}
	}
	slices.Sort(nodeIPs.Elements)
	nodeIPs.Elements = slices.Compact(nodeIPs.Elements)
	rs.Sets[setNodePortIPs] = nodeIPs
	svcIPs := Map{Type: ipPortProto, Elements: map[string]string{}}
	svcNodePorts := Map{Type: portProto, Elements: map[string]string{}}
	noEpSvcs := Map{Type: ipPortProto, Elements: map[string]string{}}
	noEpNodePorts := Map{Type: portProto, Elements: map[string]string{}}

	for _, sp := range state.Services {
		proto, ok := l4proto(sp.Protocol)
		if !ok {
			skip(sp, "protocol %q", sp.Protocol)
			continue
		}
		id := portID(sp, proto)
		internal := ipv4Only(sp.InternalEndpoints(state.NodeName))
		var external []spec.Endpoint
		hasExternal := sp.NodePort != 0 || len(sp.LoadBalancerIPs) > 0
		if hasExternal {
			external = ipv4Only(sp.ExternalEndpoints(state.NodeName))
		}
		// Endpoint chains, shared by the internal and external paths.
		for _, ep := range unionEndpoints(internal, external) {
			rs.addEndpoint(id, proto, sp.SessionAffinityTimeout, ep)
		}
		// Without usable endpoints: reject, or drop when a traffic policy
		// Local is the reason (upstream's rule).
		anyUsable := len(ipv4Only(spec.ServicePort{Endpoints: sp.Endpoints}.InternalEndpoints(state.NodeName))) > 0
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
		put := func(ips []netip.Addr, verdict string, hasEndpoints bool) {
			for _, ip := range ips {
				if !ip.Unmap().Is4() {
					skip(sp, "address %s", ip)
					continue
				}
				key := fmt.Sprintf("%s . %s . %d", ip.Unmap(), proto, sp.Port)
				if hasEndpoints {
					svcIPs.Elements[key] = verdict
				} else {
					noEpSvcs.Elements[key] = verdict
				}
			}
		}
		put(sp.ClusterIPs, internalVerdict, len(internal) > 0)
		put(sp.LoadBalancerIPs, externalVerdict, len(external) > 0)
		if sp.NodePort != 0 {
			key := fmt.Sprintf("%s . %d", proto, sp.NodePort)
			if len(external) > 0 {
				svcNodePorts.Elements[key] = externalVerdict
			} else {
				noEpNodePorts.Elements[key] = externalVerdict
			}
		}
	}
	rs.Maps[mapServiceIPs] = svcIPs
	rs.Maps[mapServiceNodePorts] = svcNodePorts
	rs.Maps[mapNoEndpointServices] = noEpSvcs
	rs.Maps[mapNoEndpointNodePort] = noEpNodePorts
	if len(skipped) > 0 {
		return rs, &spec.PartialSyncError{Skipped: skipped}
	}
	return rs, nil
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
