package runner

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubelab/kubelab/conformance/proxy"
	"github.com/kubelab/kubelab/spec"
)

// ProxySuite returns the proxy suite's entry: conformance/proxy run against
// service proxy plugins of the registry, each spec in network namespaces
// of its own, judged by traffic. It needs root.
//
// Targets (Options.Targets["proxy"]): registered proxy plugin names
// (spec.Registry.RegisterProxy), built in the child with the option
// proxy.NetnsOption. With none, every registered proxy plugin whose name
// does not start with BrokenPrefix (kubelab's nftables and userspace).
// The suite takes no endpoints: it drives the plugin through spec.Proxy,
// with no API server.
func ProxySuite() Suite {
	return Suite{
		Name:         "proxy",
		Capabilities: proxy.Capabilities(),
		Targets:      proxyTargets,
		Declare:      declareProxy,
		Claims:       proxyClaims,
	}
}

func proxyTargets(reg *spec.Registry, names, endpoints []string) ([]Target, error) {
	if len(endpoints) > 0 {
		return nil, fmt.Errorf("proxy suite: takes no endpoints (it drives a registered proxy plugin in network namespaces of its own), got %v: %w", endpoints, spec.ErrInvalid)
	}
	if len(names) == 0 {
		for _, n := range reg.ProxyNames() {
			if !strings.HasPrefix(n, BrokenPrefix) {
				names = append(names, n)
			}
		}
	}
	out := make([]Target, 0, len(names))
	for _, n := range names {
		if _, err := reg.Proxy(n); err != nil {
			return nil, fmt.Errorf("proxy target %q (registered: %s): %w", n, strings.Join(reg.ProxyNames(), ", "), err)
		}
		out = append(out, Target{Name: n, Plugin: n})
	}
	return out, nil
}

// proxyClaims are the suite's mandatory capabilities and the optional
// ones the plugin declares.
func proxyClaims(reg *spec.Registry, t Target) spec.Capabilities {
	p, err := reg.Proxy(t.Plugin)
	if err != nil {
		return nil
	}
	var out spec.Capabilities
	for _, c := range proxy.Capabilities() {
		if !isOptionalProxyCap(c) || p.Capabilities.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// isOptionalProxyCap reports whether c is one of spec's optional proxy
// capabilities (as opposed to one every proxy must prove).
func isOptionalProxyCap(c spec.Capability) bool {
	switch c {
	case spec.CapProxyUDP, spec.CapProxyNodePort, spec.CapProxyLoadBalancer, spec.CapProxyExternalIPs,
		spec.CapProxySessionAffinity, spec.CapProxyInternalTrafficLocal, spec.CapProxyExternalTrafficLocal,
		spec.CapProxyHairpin:
		return true
	}
	return false
}

func declareProxy(_ context.Context, reg *spec.Registry, t Target, _ bool) (func() error, error) {
	p, err := reg.Proxy(t.Plugin)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", t.Name, err)
	}
	proxy.Register(proxy.PluginTarget(t.Name, p, nil))
	return nil, nil
}
