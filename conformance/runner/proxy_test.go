package runner_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kubelab/kubelab/conformance/proxy"
	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/fakes/brokenproxy"
	"github.com/kubelab/kubelab/plugins/proxy/nftables"
	"github.com/kubelab/kubelab/plugins/proxy/userspace"
	"github.com/kubelab/kubelab/spec"
)

// TestProxyTargets checks how the proxy suite turns names into targets and
// what the targets claim.
func TestProxyTargets(t *testing.T) {
	reg := spec.NewRegistry()
	spec.MustRegister(reg.RegisterProxy(nftables.Plugin()))
	spec.MustRegister(reg.RegisterProxy(userspace.Plugin()))
	for _, p := range brokenproxy.Plugins(nftables.Plugin()) {
		spec.MustRegister(reg.RegisterProxy(p))
	}
	suite := runner.ProxySuite()
	names := func(ts []runner.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}
	got, err := suite.Targets(reg, nil, nil)
	if err != nil || !slices.Equal(names(got), []string{"nftables", "userspace"}) {
		t.Errorf("default targets = %v, %v; want [nftables userspace] (no broken ones)", names(got), err)
	}
	got, err = suite.Targets(reg, []string{brokenproxy.DropsUDP}, nil)
	if err != nil || !slices.Equal(names(got), []string{brokenproxy.DropsUDP}) {
		t.Errorf("named broken target = %v, %v", names(got), err)
	}
	if _, err := suite.Targets(reg, []string{"ipvs"}, nil); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("unknown proxy: err = %v, want ErrNotFound", err)
	}
	if _, err := suite.Targets(reg, nil, []string{"http://127.0.0.1:6443"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("endpoints: err = %v, want ErrInvalid", err)
	}
	// Every capability of the suite that userspace declares, and the
	// mandatory ones; a plugin declaring nothing claims only the latter.
	claims := suite.Claims(reg, runner.Target{Name: "userspace", Plugin: "userspace"})
	for _, c := range proxy.Capabilities() {
		optional := slices.Contains(spec.Capabilities{spec.CapProxyUDP,
			spec.CapProxyNodePort, spec.CapProxyLoadBalancer, spec.CapProxyExternalIPs, spec.CapProxySessionAffinity,
			spec.CapProxyInternalTrafficLocal, spec.CapProxyExternalTrafficLocal, spec.CapProxyHairpin}, c)
		if want := !optional || userspace.Plugin().Capabilities.Has(c); claims.Has(c) != want {
			t.Errorf("userspace's claims %v: has %s = %v, want %v", claims, c, !want, want)
		}
	}
	if claims.Has(spec.CapProxyExternalTrafficLocal) {
		t.Errorf("userspace's claims include %s, which it does not declare", spec.CapProxyExternalTrafficLocal)
	}
	spec.MustRegister(reg.RegisterProxy(spec.ProxyPlugin{Name: "bare", New: userspace.Plugin().New}))
	claims = suite.Claims(reg, runner.Target{Name: "bare", Plugin: "bare"})
	if !claims.Has(proxy.CapReject) || claims.Has(spec.CapProxyUDP) || claims.Has(spec.CapProxyNodePort) {
		t.Errorf("claims of a plugin declaring nothing = %v; want the mandatory capabilities only", claims)
	}
}
