package proxy_test

import (
	"os"
	"testing"
	"time"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/proxy"
	"github.com/kubelab/kubelab/fakes/brokenproxy"
	"github.com/kubelab/kubelab/plugins/proxy/nftables"
)

// TestBrokenProxiesAreCaught runs the suite against every broken proxy of
// fakes/brokenproxy (over nftables), each in a child process, and checks
// that each fails on the capability meant to catch it and on no
// capability it has no business failing.
func TestBrokenProxiesAreCaught(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the proxy suite needs root (network namespaces)")
	}
	harness.ExpectAllCaught(t, proxy.Capabilities(), brokenproxy.Catalog(nftables.Plugin()),
		func(b brokenproxy.Broken) harness.Broken {
			return harness.Broken{Name: b.Plugin.Name, CaughtBy: b.CaughtBy, AlsoFails: b.AlsoFails}
		},
		func(t *testing.T, b brokenproxy.Broken) harness.Outcome {
			return harness.RunChild(t, harness.Child{Env: []string{targetEnv + "=" + b.Plugin.Name}, Timeout: 10 * time.Minute})
		})
}
