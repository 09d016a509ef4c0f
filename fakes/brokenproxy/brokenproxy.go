// Package brokenproxy holds deliberately broken service proxies for the
// proxy conformance suite's meta-test: each wraps a correct proxy plugin
// (kubelab's nftables or userspace) and breaks one rule of spec.Proxy, by
// changing the state it passes down or by skipping a call. The meta-test
// (conformance/proxy/broken_test.go) proves the suite catches each with
// exactly the capability meant to catch it. Their names start with
// "broken-", so runners never pick them by default.
package brokenproxy

import (
	"context"
	"slices"

	"github.com/kubelab/kubelab/spec"
)

// Names of the broken proxy plugins.
const (
	// IgnoresReadiness marks every endpoint that is not terminating Ready,
	// so endpoints that are not ready get traffic. Caught by
	// proxy:readiness only.
	IgnoresReadiness = "broken-ignores-readiness"
	// NoAffinity drops ClientIP session affinity. Caught by
	// proxy:session-affinity only.
	NoAffinity = "broken-no-affinity"
	// NoNodePort opens no NodePort. Caught by proxy:nodeport; also by
	// proxy:external-traffic-local, whose spec sends external traffic
	// through a NodePort.
	NoNodePort = "broken-no-nodeport"
	// DropsUDP programs no UDP service port. Caught by proxy:udp only.
	DropsUDP = "broken-drops-udp"
	// NodePortFirstAddress opens NodePorts on the first node address only.
	// Caught by proxy:nodeport only.
	NodePortFirstAddress = "broken-nodeport-first-address"
	// NoLoadBalancer serves no LoadBalancer IP. Caught by
	// proxy:loadbalancer only.
	NoLoadBalancer = "broken-no-loadbalancer"
	// IgnoresInternalLocal treats internalTrafficPolicy Local as Cluster.
	// Caught by proxy:internal-traffic-local only.
	IgnoresInternalLocal = "broken-ignores-internal-local"
	// IgnoresExternalLocal treats externalTrafficPolicy Local as Cluster
	// (traffic to other nodes' endpoints, masqueraded). Caught by
	// proxy:external-traffic-local only.
	IgnoresExternalLocal = "broken-ignores-external-local"
	// RewritesEverything removes everything (Cleanup) before every Sync and
	// installs the whole state again, so every Sync leaves a gap in which
	// no service is served. Caught by proxy:scale only.
	RewritesEverything = "broken-rewrites-everything"
	// LeavesRules: Cleanup does nothing, so the proxy's tables or
	// addresses stay. Caught by proxy:cleanup only.
	LeavesRules = "broken-leaves-rules"
)

// Capability labels of conformance/proxy (a fake may not import
// conformance; the meta-test checks that every name here is a capability
// of the suite).
const (
	capReadiness spec.Capability = "proxy:readiness"
	capCleanup   spec.Capability = "proxy:cleanup"
	capScale     spec.Capability = "proxy:scale"
)

// Broken is a broken proxy plugin and the capabilities of the proxy suite
// whose specs catch it.
type Broken struct {
	// Plugin is the broken proxy, named with the "broken-" prefix.
	Plugin spec.ProxyPlugin
	// CaughtBy is the capability whose specs target the bug: at least one
	// of them must fail.
	CaughtBy spec.Capability
	// AlsoFails are other capabilities whose specs may fail too. Specs of
	// any other capability must pass.
	AlsoFails []spec.Capability
}

// Catalog returns every broken proxy built over base (a correct proxy
// plugin claiming every capability the catalog breaks: kubelab's nftables
// proxy), with the capabilities that catch it.
func Catalog(base spec.ProxyPlugin) []Broken {
	mutate := func(name, desc string, m func(*spec.ServicePort) bool) spec.ProxyPlugin {
		return wrap(base, name, desc, func(st spec.ProxyState) spec.ProxyState {
			out := st
			out.Services = nil
			for _, sp := range st.Services {
				sp.Endpoints = slices.Clone(sp.Endpoints)
				if m(&sp) {
					out.Services = append(out.Services, sp)
				}
			}
			return out
		}, false)
	}
	return []Broken{
		{Plugin: mutate(IgnoresReadiness, "marks every endpoint that is not terminating ready", func(sp *spec.ServicePort) bool {
			for i := range sp.Endpoints {
				if !sp.Endpoints[i].Terminating {
					sp.Endpoints[i].Ready, sp.Endpoints[i].Serving = true, true
				}
			}
			return true
		}), CaughtBy: capReadiness},
		{Plugin: mutate(NoAffinity, "drops ClientIP session affinity", func(sp *spec.ServicePort) bool {
			sp.SessionAffinityTimeout = 0
			return true
		}), CaughtBy: spec.CapProxySessionAffinity},
		{Plugin: mutate(NoNodePort, "opens no NodePort", func(sp *spec.ServicePort) bool {
			sp.NodePort = 0
			return true
		}), CaughtBy: spec.CapProxyNodePort, AlsoFails: []spec.Capability{spec.CapProxyExternalTrafficLocal}},
		{Plugin: mutate(DropsUDP, "programs no UDP service port", func(sp *spec.ServicePort) bool {
			return sp.Protocol != spec.ProtocolUDP
		}), CaughtBy: spec.CapProxyUDP},
		{Plugin: wrap(base, NodePortFirstAddress, "opens NodePorts on the first node address only", func(st spec.ProxyState) spec.ProxyState {
			st.NodeAddresses = st.NodeAddresses[:min(1, len(st.NodeAddresses))]
			return st
		}, false), CaughtBy: spec.CapProxyNodePort},
		{Plugin: mutate(NoLoadBalancer, "serves no LoadBalancer IP", func(sp *spec.ServicePort) bool {
			sp.LoadBalancerIPs = nil
			return true
		}), CaughtBy: spec.CapProxyLoadBalancer},
		{Plugin: mutate(IgnoresInternalLocal, "treats internalTrafficPolicy Local as Cluster", func(sp *spec.ServicePort) bool {
			sp.InternalTrafficPolicy = spec.TrafficPolicyCluster
			return true
		}), CaughtBy: spec.CapProxyInternalTrafficLocal},
		{Plugin: mutate(IgnoresExternalLocal, "treats externalTrafficPolicy Local as Cluster", func(sp *spec.ServicePort) bool {
			sp.ExternalTrafficPolicy = spec.TrafficPolicyCluster
			return true
		}), CaughtBy: spec.CapProxyExternalTrafficLocal},
		{Plugin: rewrites(base), CaughtBy: capScale},
		{Plugin: wrap(base, LeavesRules, "Cleanup does nothing", nil, true), CaughtBy: capCleanup},
	}
}

// Plugins returns the plugins of Catalog(base).
func Plugins(base spec.ProxyPlugin) []spec.ProxyPlugin {
	var out []spec.ProxyPlugin
	for _, b := range Catalog(base) {
		out = append(out, b.Plugin)
	}
	return out
}

// wrap is base named name, whose Sync hands down change(state) (state
// itself when change is nil) and whose Cleanup does nothing when
// skipCleanup.
func wrap(base spec.ProxyPlugin, name, desc string, change func(spec.ProxyState) spec.ProxyState, skipCleanup bool) spec.ProxyPlugin {
	return spec.ProxyPlugin{
		Name:         name,
		Description:  "broken, over " + base.Name + ": " + desc,
		Capabilities: slices.Clone(base.Capabilities),
		New: func(ctx context.Context, cfg spec.ProxyConfig) (spec.Proxy, error) {
			p, err := base.New(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &broken{Proxy: p, change: change, skipCleanup: skipCleanup}, nil
		},
	}
}

// broken is a spec.Proxy over a correct one.
type broken struct {
	spec.Proxy
	change      func(spec.ProxyState) spec.ProxyState
	skipCleanup bool
}

// Sync hands the proxy below the changed state.
func (b *broken) Sync(ctx context.Context, st spec.ProxyState) error {
	if b.change != nil {
		st = b.change(st)
	}
	return b.Proxy.Sync(ctx, st)
}

// Cleanup cleans up, unless this proxy's bug is not to.
func (b *broken) Cleanup(ctx context.Context) error {
	if b.skipCleanup {
		return nil
	}
	return b.Proxy.Cleanup(ctx)
}

// rewrites is RewritesEverything over base.
func rewrites(base spec.ProxyPlugin) spec.ProxyPlugin {
	return spec.ProxyPlugin{
		Name:         RewritesEverything,
		Description:  "broken, over " + base.Name + ": removes everything before every Sync",
		Capabilities: slices.Clone(base.Capabilities),
		New: func(ctx context.Context, cfg spec.ProxyConfig) (spec.Proxy, error) {
			p, err := base.New(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return rewriter{p}, nil
		},
	}
}

// rewriter is a spec.Proxy that cleans up before every Sync.
type rewriter struct{ spec.Proxy }

// Sync removes everything, then installs state.
func (r rewriter) Sync(ctx context.Context, state spec.ProxyState) error {
	if err := r.Proxy.Cleanup(ctx); err != nil {
		return err
	}
	return r.Proxy.Sync(ctx, state)
}
