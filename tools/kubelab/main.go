// Command kubelab runs kubelab's conformance suites and lists its plugins.
// See package github.com/kubelab/kubelab/tools/kubelab/cli for the commands,
// and for building a kubelab of your own with more plugins.
//
// Besides the built-in plugins (plugins/builtin), the binary registers the
// deliberately broken stores of fakes/brokenstore, built over the memory store,
// the broken runtimes of fakes/brokenruntime, built over the process runtime,
// the broken schedulers of fakes/brokenscheduler (plugins, and profiles
// for the scheduler suite), and the broken proxies of fakes/brokenproxy,
// built over the nftables proxy.
// Their names start with "broken-", so `kubelab conform` never runs them by
// default and `kubelab plugins` lists them only with --all; name one to
// watch the suite catch it:
//
//	kubelab conform --store broken-ignores-expected-revision --label-filter store:cas
//	kubelab conform --suite runtime --runtime broken-no-exit-codes
//	kubelab conform --suite scheduler --scheduler broken-overcommits-memory
//	kubelab conform --suite proxy --target proxy=broken-ignores-readiness
package main

import (
	"os"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/fakes/brokenproxy"
	"github.com/kubelab/kubelab/fakes/brokenruntime"
	"github.com/kubelab/kubelab/fakes/brokenscheduler"
	"github.com/kubelab/kubelab/fakes/brokenstore"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/plugins/proxy/nftables"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

// registry returns the plugins of the kubelab binary.
func registry() *spec.Registry {
	reg := builtin.Registry()
	for _, p := range brokenstore.Plugins(memory.Plugin()) {
		spec.MustRegister(reg.RegisterStore(p))
	}
	for _, p := range brokenruntime.Plugins(process.Plugin()) {
		spec.MustRegister(reg.RegisterRuntime(p))
	}
	for _, p := range brokenscheduler.Plugins() {
		spec.MustRegister(reg.RegisterScheduler(p))
	}
	for _, p := range brokenscheduler.Profiles() {
		spec.MustRegister(reg.RegisterProfile(p))
	}
	for _, p := range brokenproxy.Plugins(nftables.Plugin()) {
		spec.MustRegister(reg.RegisterProxy(p))
	}
	return reg
}

func main() {
	reg := registry()
	// `kubelab conform` re-executes this binary once per suite and target;
	// in such a child this runs the suite and exits.
	runner.RunChildIfRequested(reg)
	os.Exit(cli.Main(reg))
}
