// Package proxy is the service proxy conformance suite: Ginkgo v2 specs that
// judge a spec.Proxy only by traffic. Each spec builds its own network in
// fresh network namespaces — a node namespace where the proxy under test
// programs its rules, three backend namespaces joined to the node by veth
// pairs, each running a TCP and a UDP server that answers with its own
// address, and a client namespace outside the node — hands the proxy a
// spec.ProxyState directly, and dials from the node (internal traffic),
// from the client (NodePorts) or from a backend (hairpin). Nothing is read
// from the proxy's rules, logs or metrics, so the same specs judge any data
// plane.
//
// No API server is involved: the contract is spec.Proxy, whose input is a
// ProxyState. Turning Services and EndpointSlices into that state is
// reference/proxy's job and is tested there (its BuildState table tests
// and `kubelab proxy` against `kubelab apiserver`).
//
// A Target builds a proxy for one spec's node namespace (PluginTarget does
// so for a registered plugin through its "netns" option). Every spec
// carries the area label "proxy" and one capability label (Capabilities);
// specs of the optional spec.CapProxy* capabilities a target does not claim
// are skipped. The suite needs root (network namespaces, nftables); without
// it every spec fails at its setup.
//
// Teardown calls the proxy's Cleanup and removes the namespaces, taking
// every link, address, route, table and sysctl in them along; the host is
// never changed.
package proxy
