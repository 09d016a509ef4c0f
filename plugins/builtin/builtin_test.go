package builtin_test

import (
	"slices"
	"testing"

	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/spec"
)

func TestRegistryHasTheBuiltins(t *testing.T) {
	reg := builtin.Registry()
	if got := reg.StoreNames(); !slices.Equal(got, []string{"etcd", "memory"}) {
		t.Errorf("StoreNames() = %v, want [etcd memory]", got)
	}
	for _, p := range builtin.StorePlugins() {
		if p.Description == "" {
			t.Errorf("store plugin %q has no description", p.Name)
		}
	}
}

func TestRegistryHasTheRuntimes(t *testing.T) {
	if got := builtin.Registry().RuntimeNames(); !slices.Equal(got, []string{"cri", "hollow", "process"}) {
		t.Errorf("RuntimeNames() = %v, want [cri hollow process]", got)
	}
	for _, p := range builtin.RuntimePlugins() {
		if p.Description == "" {
			t.Errorf("runtime plugin %q has no description", p.Name)
		}
	}
}

func TestRegistryHasTheSchedulerPlugins(t *testing.T) {
	names := builtin.Registry().SchedulerNames()
	for _, want := range []string{"NodeResourcesFit", "TaintToleration", "PodTopologySpread", "InterPodAffinity", "DefaultPreemption", "DefaultBinder", "PrioritySort", "BinPacking", "Random"} {
		if !slices.Contains(names, want) {
			t.Errorf("SchedulerNames() = %v, missing %s", names, want)
		}
	}
	if len(names) != len(builtin.SchedulerPlugins()) {
		t.Errorf("%d scheduler plugins registered, SchedulerPlugins lists %d", len(names), len(builtin.SchedulerPlugins()))
	}
	for _, p := range builtin.SchedulerPlugins() {
		if p.Description == "" {
			t.Errorf("scheduler plugin %q has no description", p.Name)
		}
	}
}

func TestRegistryHasTheProxies(t *testing.T) {
	if got := builtin.Registry().ProxyNames(); !slices.Equal(got, []string{"nftables", "userspace"}) {
		t.Errorf("ProxyNames() = %v, want [nftables userspace]", got)
	}
	for _, p := range builtin.ProxyPlugins() {
		if p.Description == "" || len(p.Capabilities) == 0 {
			t.Errorf("proxy plugin %q has no description or no capabilities", p.Name)
		}
	}
}

func TestRegistryIsFreshEachCall(t *testing.T) {
	a := builtin.Registry()
	if err := a.RegisterStore(spec.StorePlugin{Name: "extra", New: builtin.StorePlugins()[0].New}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(builtin.Registry().StoreNames(), "extra") {
		t.Errorf("a plugin added to one Registry shows in another")
	}
}
