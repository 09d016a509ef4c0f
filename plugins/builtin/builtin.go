// Package builtin lists kubelab's built-in plugins. It is the one place
// where concrete plugins meet the registry: the kubelab command calls
// Registry, and a third party building its own kubelab calls it too and then
// registers its own plugins on the result. Nothing here runs at init time.
package builtin

import (
	"github.com/kubelab/kubelab/plugins/proxy/nftables"
	"github.com/kubelab/kubelab/plugins/proxy/userspace"
	"github.com/kubelab/kubelab/plugins/runtime/cri"
	"github.com/kubelab/kubelab/plugins/runtime/hollow"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

// StorePlugins returns the built-in store plugins, in the order they are
// registered.
func StorePlugins() []spec.StorePlugin {
	return []spec.StorePlugin{
		memory.Plugin(),
		etcd.Plugin(),
	}
}

// RuntimePlugins returns the built-in container runtime plugins, in the
// order they are registered.
func RuntimePlugins() []spec.RuntimePlugin {
	return []spec.RuntimePlugin{
		hollow.Plugin(),
		process.Plugin(),
		cri.Plugin(),
	}
}

// ProxyPlugins returns the built-in service proxy plugins, in the order
// they are registered.
func ProxyPlugins() []spec.ProxyPlugin {
	return []spec.ProxyPlugin{
		nftables.Plugin(),
		userspace.Plugin(),
	}
}

// SchedulerPlugins returns the built-in scheduler policy plugins (the
// kube-scheduler's defaults and the research baselines), in the order they
// are registered. Package plugins/scheduler/profiles assembles them into
// the default and baseline profiles.
func SchedulerPlugins() []spec.SchedulerPlugin {
	return profiles.Plugins()
}

// SchedulerProfiles returns kubelab's scheduler profiles: default-scheduler
// (upstream's plugins and weights) and the research baselines
// (plugins/scheduler/profiles).
func SchedulerProfiles() []spec.Profile {
	return profiles.All()
}

// Registry returns a new Registry holding every built-in plugin and scheduler profile. Each call
// returns a fresh Registry that the caller may add to. It panics if two
// built-ins share a name, which is a programming error.
func Registry() *spec.Registry {
	reg := spec.NewRegistry()
	for _, p := range StorePlugins() {
		spec.MustRegister(reg.RegisterStore(p))
	}
	for _, p := range RuntimePlugins() {
		spec.MustRegister(reg.RegisterRuntime(p))
	}
	for _, p := range SchedulerPlugins() {
		spec.MustRegister(reg.RegisterScheduler(p))
	}
	for _, p := range SchedulerProfiles() {
		spec.MustRegister(reg.RegisterProfile(p))
	}
	for _, p := range ProxyPlugins() {
		spec.MustRegister(reg.RegisterProxy(p))
	}
	return reg
}
