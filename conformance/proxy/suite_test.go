package proxy_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/proxy"
	"github.com/kubelab/kubelab/fakes/brokenproxy"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/plugins/proxy/nftables"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/netlab"
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
	before := hostSnapshot(t)
	proxy.Register(proxy.PluginTarget(name, p, nil))
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "proxy")
	if after := hostSnapshot(t); after != before {
		t.Errorf("the suite changed the host:\nbefore: %s\nafter:  %s", before, after)
	}
}

// hostSnapshot describes what the suite must not change on the host (see
// netlab.HostSnapshot), counting the nftables tables named after this
// process's nodes ("conf-<pid>-", the nftables plugin's table suffix):
// other programs (and the meta-test's concurrent children) may change
// other tables meanwhile.
func hostSnapshot(t *testing.T) string {
	t.Helper()
	s, err := netlab.HostSnapshot(fmt.Sprintf("conf-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
