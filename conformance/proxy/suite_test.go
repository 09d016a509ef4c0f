package proxy_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
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
	before := hostSnapshot(t)
	proxy.Register(proxy.PluginTarget(name, p, nil))
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "proxy")
	if after := hostSnapshot(t); after != before {
		t.Errorf("the suite changed the host:\nbefore: %s\nafter:  %s", before, after)
	}
}

// hostSnapshot describes what the suite must not change on the host:
// links named like the labs' ("kl-"), nftables tables named after this
// process's nodes ("conf-<pid>-", the nftables plugin's table suffix) and
// ip_forward. Specs build everything in namespaces of their own, so none
// of it may change. Other tables are left out: other programs (and the
// meta-test's concurrent children) may change them meanwhile.
func hostSnapshot(t *testing.T) string {
	t.Helper()
	links, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range links {
		if strings.HasPrefix(k.Name, "kl-") {
			names = append(names, k.Name)
		}
	}
	tables, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		t.Fatalf("nft list tables: %v", err)
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, line := range strings.Split(string(tables), "\n") {
		if strings.Contains(line, fmt.Sprintf("conf-%d-", os.Getpid())) {
			ours = append(ours, strings.TrimSpace(line))
		}
	}
	return fmt.Sprintf("links=%v tables=%q ip_forward=%s", names, ours, strings.TrimSpace(string(fwd)))
}
