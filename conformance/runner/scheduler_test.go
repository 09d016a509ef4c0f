package runner_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/conformance/scheduler"
	"github.com/kubelab/kubelab/fakes/brokenscheduler"
	"github.com/kubelab/kubelab/fakes/brokenstore"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

// TestSchedulerTargets checks how the scheduler suite turns names and
// endpoints into targets, and what each claims.
func TestSchedulerTargets(t *testing.T) {
	reg := spec.NewRegistry()
	spec.MustRegister(reg.RegisterStore(memory.Plugin()))
	for _, p := range brokenstore.Plugins(memory.Plugin()) {
		spec.MustRegister(reg.RegisterStore(p))
	}
	for _, p := range append(profiles.All(), brokenscheduler.Profiles()...) {
		spec.MustRegister(reg.RegisterProfile(p))
	}
	suite := runner.SchedulerSuite()
	names := func(ts []runner.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}

	def, err := suite.Targets(reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"default-scheduler@memory", "binpack-scheduler@memory", "spread-scheduler@memory", "random-scheduler@memory", "firstfit-scheduler@memory"}
	if got := names(def); !slices.Equal(got, want) {
		t.Errorf("default targets = %v, want %v (no broken store, no broken scheduler)", got, want)
	}
	if c := suite.Claims(reg, def[0]); len(c) != len(scheduler.Capabilities()) {
		t.Errorf("default-scheduler claims %v, want every capability", c)
	}
	if c := suite.Claims(reg, def[1]); c.Has(scheduler.CapBurst) || !c.Has(scheduler.CapResources) {
		t.Errorf("a default baseline target claims %v", c)
	}

	got, err := suite.Targets(reg, []string{"binpack", "broken-overcommits-memory", "extender=http://127.0.0.1:8888"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := names(got); !slices.Equal(n, []string{"binpack@memory", "broken-overcommits-memory@memory", "default-scheduler+extender@memory"}) {
		t.Errorf("named targets = %v", n)
	}
	if c := suite.Claims(reg, got[0]); !c.Has(scheduler.CapBurst) {
		t.Errorf("a baseline named explicitly claims %v, want every capability", c)
	}

	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcfg, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:6443\"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = suite.Targets(reg, []string{"name=my-scheduler", "default-scheduler"}, []string{kcfg})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(got); !slices.Equal(n, []string{"external:my-scheduler", "default-scheduler@endpoints"}) {
		t.Errorf("targets with an API server = %v", n)
	}

	for _, bad := range []struct {
		names, endpoints []string
		want             error
	}{
		{[]string{"no-such-profile"}, nil, spec.ErrNotFound},
		{[]string{"default-scheduler@no-such-store"}, nil, spec.ErrNotFound},
		{[]string{"name=x"}, nil, spec.ErrInvalid},
		{[]string{"name="}, []string{kcfg}, spec.ErrInvalid},
		{[]string{"extender=ftp://x"}, nil, spec.ErrInvalid},
		{nil, []string{"not-a-file-nor-url"}, spec.ErrInvalid},
	} {
		if _, err := suite.Targets(reg, bad.names, bad.endpoints); !errors.Is(err, bad.want) {
			t.Errorf("targets %v %v: error %v, want %v", bad.names, bad.endpoints, err, bad.want)
		}
	}
}
