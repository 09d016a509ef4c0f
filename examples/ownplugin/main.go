// Command ownplugin is a kubelab of your own: the kubelab CLI (conform,
// plugins, apiserver, scheduler, runtime...) with kubelab's built-in
// plugins plus one plugin of each contract from this module — a store
// (countingstore), a scheduler plugin and a profile using it (preferlabel)
// and a runtime (myruntime). See README.md, "Writing and testing your own
// plugin".
package main

import (
	"os"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/kubelab/cli"

	"example.com/ownplugin/countingstore"
	"example.com/ownplugin/myruntime"
	"example.com/ownplugin/preferlabel"
)

// ProfileName is the scheduler profile this kubelab adds: kubelab's default
// profile plus PreferLabel at weight 5.
const ProfileName = "prefer-label-scheduler"

func registry() *spec.Registry {
	reg := builtin.Registry()
	spec.MustRegister(reg.RegisterStore(countingstore.Plugin()))
	spec.MustRegister(reg.RegisterScheduler(preferlabel.Plugin()))
	spec.MustRegister(reg.RegisterRuntime(myruntime.Plugin()))
	p := profiles.Default()
	p.SchedulerName = ProfileName
	p.Plugins = append(p.Plugins, spec.WeightedPlugin{Name: preferlabel.Name, Weight: 5})
	spec.MustRegister(reg.RegisterProfile(p))
	return reg
}

func main() {
	// The process runtime re-executes this binary as each container's shim
	// and init: become one now, before anything else runs.
	process.RunInitIfRequested()
	reg := registry()
	// `conform` re-executes this binary once per suite and target; in such
	// a child this runs the suite and exits.
	runner.RunChildIfRequested(reg)
	os.Exit(cli.Main(reg))
}
