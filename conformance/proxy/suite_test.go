package proxy_test

import (
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/proxy"
	"github.com/kubelab/kubelab/fakes/brokenproxy"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/plugins/proxy/nftables"
	"github.com/kubelab/kubelab/spec"
)

// targetEnv names the proxy plugin TestSuite runs against: a built-in one
// ("nftables", the default, or "userspace") or a broken one of
// fakes/brokenproxy (built over nftables).
const targetEnv = "KUBELAB_PROXY_SUITE_TARGET"

// registry holds kubelab's proxy plugins and the broken ones.
func registry() *spec.Registry {
	reg := builtin.Registry()
	for _, p := range brokenproxy.Plugins(nftables.Plugin()) {
		spec.MustRegister(reg.RegisterProxy(p))
	}
	return reg
}

// TestSuite runs the suite in-process against the proxy plugin named by
// $KUBELAB_PROXY_SUITE_TARGET. It needs root.
func TestSuite(t *testing.T) {
	name := os.Getenv(targetEnv)
	if name == "" {
		name = nftables.Name
	}
	if os.Geteuid() != 0 {
		t.Skip("the proxy suite needs root (network namespaces)")
	}
	p, err := registry().Proxy(name)
	if err != nil {
		t.Fatalf("%s=%q: %v", targetEnv, name, err)
	}
	proxy.Register(proxy.PluginTarget(name, p, nil))
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "proxy")
}
