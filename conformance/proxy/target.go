package proxy

import (
	"context"
	"fmt"
	"maps"

	"github.com/kubelab/kubelab/spec"
)

// NetnsOption is the spec.ProxyConfig option PluginTarget sets to the path
// of the spec's node network namespace: a plugin under test must program
// that namespace (listen, dial, hold addresses and tables there) instead of
// its process's own. kubelab's nftables and userspace plugins accept it.
const NetnsOption = "netns"

// Target is the proxy under test in one run of the suite.
type Target struct {
	// Name is how reports name the target, e.g. "nftables".
	Name string
	// Claims are the optional capabilities (spec.CapProxy*) the proxy
	// claims; the specs of the others are skipped.
	Claims spec.Capabilities
	// New builds a proxy for one spec that programs the network namespace
	// pinned at netns, for node nodeName (unique to the spec). It installs
	// nothing until the first Sync; the suite calls Cleanup at the end of
	// the spec.
	New func(ctx context.Context, nodeName, netns string) (spec.Proxy, error)
}

// PluginTarget is the Target of a registered proxy plugin, built with
// options plus NetnsOption and, as NodeName, the spec's node name (which
// kubelab's nftables plugin also uses as its table suffix).
func PluginTarget(name string, p spec.ProxyPlugin, options map[string]string) Target {
	return Target{
		Name:   name,
		Claims: p.Capabilities,
		New: func(ctx context.Context, nodeName, netns string) (spec.Proxy, error) {
			opts := maps.Clone(options)
			if opts == nil {
				opts = map[string]string{}
			}
			opts[NetnsOption] = netns
			px, err := p.New(ctx, spec.ProxyConfig{NodeName: nodeName, Options: opts})
			if err != nil {
				return nil, fmt.Errorf("proxy plugin %s: %w", p.Name, err)
			}
			return px, nil
		},
	}
}

// Capability labels of the suite that every proxy must prove; every spec
// carries exactly one of these or of the optional spec.CapProxy*
// capabilities.
const (
	// CapClusterIP: TCP to a ClusterIP reaches the ready endpoints.
	CapClusterIP spec.Capability = "proxy:cluster-ip"
	// CapSpread: new connections are spread over every usable endpoint.
	CapSpread spec.Capability = "proxy:spread"
	// CapReadiness: endpoints that are not ready get no new connections.
	CapReadiness spec.Capability = "proxy:readiness"
	// CapTerminatingFallback: with no ready endpoint, the serving
	// terminating ones are used, and only they.
	CapTerminatingFallback spec.Capability = "proxy:terminating-fallback"
	// CapReject: a service without usable endpoints refuses connections
	// at once.
	CapReject spec.Capability = "proxy:reject"
	// CapChurn: after a Sync that removes an endpoint it gets no new
	// connections, and connections to the survivors keep working.
	CapChurn spec.Capability = "proxy:churn"
	// CapIdempotentSync: a Sync with an unchanged state changes nothing
	// visible to traffic.
	CapIdempotentSync spec.Capability = "proxy:idempotent-sync"
	// CapScale: 1 000 services are served, and Syncs that change one of
	// them never disturb traffic to the others.
	CapScale spec.Capability = "proxy:scale"
	// CapCleanup: Cleanup leaves nothing in the node namespace, and the
	// proxy works again after it.
	CapCleanup spec.Capability = "proxy:cleanup"
)

// Capabilities lists every capability label of the suite, in report order.
func Capabilities() spec.Capabilities {
	return spec.Capabilities{CapClusterIP, CapSpread, CapReadiness, CapTerminatingFallback, CapReject,
		CapChurn, CapIdempotentSync, CapScale, CapCleanup,
		spec.CapProxyUDP, spec.CapProxyNodePort, spec.CapProxySessionAffinity, spec.CapProxyHairpin,
		spec.CapProxyLoadBalancer, spec.CapProxyExternalIPs, spec.CapProxyInternalTrafficLocal,
		spec.CapProxyExternalTrafficLocal}
}
