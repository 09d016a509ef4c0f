// Package profiles assembles the scheduler plugins into spec.Profiles:
// Default, the kube-scheduler's default profile, and Baselines, one profile
// per research baseline scorer with the same filters. Plugins lists every
// scheduler plugin kubelab ships, for the registry.
package profiles

import (
	"fmt"
	"strings"

	"github.com/kubelab/kubelab/plugins/scheduler/baselines"
	"github.com/kubelab/kubelab/plugins/scheduler/defaultbinder"
	"github.com/kubelab/kubelab/plugins/scheduler/defaultpreemption"
	"github.com/kubelab/kubelab/plugins/scheduler/imagelocality"
	"github.com/kubelab/kubelab/plugins/scheduler/interpodaffinity"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeaffinity"
	"github.com/kubelab/kubelab/plugins/scheduler/nodename"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeports"
	"github.com/kubelab/kubelab/plugins/scheduler/noderesources"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeunschedulable"
	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/plugins/scheduler/podtopologyspread"
	"github.com/kubelab/kubelab/plugins/scheduler/queuesort"
	"github.com/kubelab/kubelab/plugins/scheduler/schedulinggates"
	"github.com/kubelab/kubelab/plugins/scheduler/tainttoleration"
	"github.com/kubelab/kubelab/spec"
)

// Scheduler names of the profiles.
const (
	DefaultSchedulerName  = "default-scheduler"
	BinPackSchedulerName  = "binpack-scheduler"
	SpreadSchedulerName   = "spread-scheduler"
	RandomSchedulerName   = "random-scheduler"
	FirstFitSchedulerName = "firstfit-scheduler"
)

// Plugins returns every scheduler plugin kubelab ships: the
// upstream-equivalent ones, then the baselines.
func Plugins() []spec.SchedulerPlugin {
	return append([]spec.SchedulerPlugin{
		schedulinggates.Plugin(),
		queuesort.Plugin(),
		nodename.Plugin(),
		nodeunschedulable.Plugin(),
		tainttoleration.Plugin(),
		nodeaffinity.Plugin(),
		nodeports.Plugin(),
		noderesources.FitPlugin(),
		podtopologyspread.Plugin(),
		interpodaffinity.Plugin(),
		defaultpreemption.Plugin(),
		noderesources.BalancedAllocationPlugin(),
		imagelocality.Plugin(),
		defaultbinder.Plugin(),
	}, baselines.Plugins()...)
}

// Default returns the kube-scheduler's default profile (v1.37's
// getDefaultPlugins), in its order and with its score weights:
// TaintToleration 3, NodeAffinity 2, NodeResourcesFit 1 (LeastAllocated
// over cpu and memory), PodTopologySpread 2, InterPodAffinity 2,
// NodeResourcesBalancedAllocation 1, ImageLocality 1. SchedulingGates acts
// at PreFilter (upstream: PreEnqueue). The volume plugins
// (VolumeRestrictions, NodeVolumeLimits, VolumeBinding, VolumeZone) are left
// out: kubelab has no volumes.
func Default() spec.Profile {
	return spec.Profile{
		SchedulerName: DefaultSchedulerName,
		Plugins: []spec.WeightedPlugin{
			{Name: schedulinggates.Name},
			{Name: queuesort.Name},
			{Name: nodename.Name},
			{Name: nodeunschedulable.Name},
			{Name: tainttoleration.Name, Weight: 3},
			{Name: nodeaffinity.Name, Weight: 2},
			{Name: nodeports.Name},
			{Name: noderesources.FitName, Weight: 1},
			{Name: podtopologyspread.Name, Weight: 2},
			{Name: interpodaffinity.Name, Weight: 2},
			{Name: defaultpreemption.Name},
			{Name: noderesources.BalancedAllocationName, Weight: 1},
			{Name: imagelocality.Name, Weight: 1},
			{Name: defaultbinder.Name},
		},
	}
}

// baseline is a profile whose only scorer is scorer: the default profile's
// filters (scoring turned off with score=false), preemption and binder. It
// scores every feasible node (PercentageOfNodesToScore 100), so that
// BinPacking finds the fullest node and FirstFit the first one in the whole
// cluster, not in the sample the adaptive default would take.
func baseline(name, scorer string, args map[string]string) spec.Profile {
	off := func() map[string]string { return map[string]string{pluginhelper.ArgScore: "false"} }
	return spec.Profile{
		SchedulerName:            name,
		PercentageOfNodesToScore: 100,
		Plugins: []spec.WeightedPlugin{
			{Name: schedulinggates.Name},
			{Name: queuesort.Name},
			{Name: nodename.Name},
			{Name: nodeunschedulable.Name},
			{Name: tainttoleration.Name, Args: off()},
			{Name: nodeaffinity.Name, Args: off()},
			{Name: nodeports.Name},
			{Name: noderesources.FitName, Args: off()},
			{Name: podtopologyspread.Name, Args: off()},
			{Name: interpodaffinity.Name, Args: off()},
			{Name: defaultpreemption.Name},
			{Name: scorer, Weight: 1, Args: args},
			{Name: defaultbinder.Name},
		},
	}
}

// Baselines returns the research baseline profiles, each with the default
// profile's filters, DefaultPreemption and DefaultBinder and one scorer:
//
//	binpack-scheduler   BinPacking (MostAllocated cpu/memory)
//	spread-scheduler    Spread (fewest pods)
//	random-scheduler    Random (args seed=0; change it to vary)
//	firstfit-scheduler  FirstFit (first feasible node by name)
func Baselines() []spec.Profile {
	return []spec.Profile{
		baseline(BinPackSchedulerName, baselines.BinPackingName, nil),
		baseline(SpreadSchedulerName, baselines.SpreadName, nil),
		baseline(RandomSchedulerName, baselines.RandomName, map[string]string{baselines.ArgSeed: "0"}),
		baseline(FirstFitSchedulerName, baselines.FirstFitName, nil),
	}
}

// All returns Default followed by Baselines.
func All() []spec.Profile { return append([]spec.Profile{Default()}, Baselines()...) }

// Lookup returns the profile with scheduler name name from All. The
// "-scheduler" suffix may be left out ("binpack" finds
// "binpack-scheduler", "default" the default profile). An unknown name is
// an error wrapping spec.ErrNotFound that lists the known ones.
func Lookup(name string) (spec.Profile, error) {
	var known []string
	for _, p := range All() {
		if p.SchedulerName == name || p.SchedulerName == name+"-scheduler" {
			return p, nil
		}
		known = append(known, p.SchedulerName)
	}
	return spec.Profile{}, fmt.Errorf("scheduler profile %q (known: %s): %w", name, strings.Join(known, ", "), spec.ErrNotFound)
}
