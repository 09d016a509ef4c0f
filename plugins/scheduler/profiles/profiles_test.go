package profiles_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestPluginsBuildWithDefaults(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range profiles.Plugins() {
		if seen[p.Name] {
			t.Errorf("plugin %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Description == "" {
			t.Errorf("plugin %q has no description", p.Name)
		}
		pl, err := p.New(nil, nil)
		if err != nil {
			t.Errorf("plugin %q: New(nil, nil): %v", p.Name, err)
			continue
		}
		if pl.Name() != p.Name {
			t.Errorf("plugin registered as %q calls itself %q", p.Name, pl.Name())
		}
	}
	for _, prof := range profiles.All() {
		for _, wp := range prof.Plugins {
			if !seen[wp.Name] {
				t.Errorf("profile %s uses unknown plugin %q", prof.SchedulerName, wp.Name)
			}
		}
		if _, err := schedtest.NewFramework(prof, profiles.Plugins(), &schedtest.Handle{}); err != nil {
			t.Errorf("profile %s: %v", prof.SchedulerName, err)
		}
	}
}

func TestDefaultProfileMatchesUpstream(t *testing.T) {
	p := profiles.Default()
	if p.SchedulerName != "default-scheduler" {
		t.Errorf("scheduler name %q", p.SchedulerName)
	}
	weights := map[string]int64{}
	var order []string
	for _, wp := range p.Plugins {
		order = append(order, wp.Name)
		if wp.Weight != 0 {
			weights[wp.Name] = wp.Weight
		}
	}
	want := map[string]int64{"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2, "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}
	if !maps.Equal(weights, want) {
		t.Errorf("score weights = %v, want %v", weights, want)
	}
	wantOrder := "SchedulingGates PrioritySort NodeName NodeUnschedulable TaintToleration NodeAffinity NodePorts NodeResourcesFit PodTopologySpread InterPodAffinity DefaultPreemption NodeResourcesBalancedAllocation ImageLocality DefaultBinder"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("order = %s\nwant    %s", got, wantOrder)
	}
}

func TestDefaultProfileReasons(t *testing.T) {
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	for i := range 3 {
		name := fmt.Sprintf("small-%d", i)
		nodes = append(nodes, spectest.MakeNode().Name(name).Capacity(spectest.Res{"cpu": "2", "memory": "4Gi"}).Obj())
		pods = append(pods, spectest.MakePod().Name("busy-"+name).Node(name).Req(spectest.Res{"cpu": "1500m"}).Obj())
	}
	for i := range 2 {
		nodes = append(nodes, spectest.MakeNode().Name(fmt.Sprintf("gpu-%d", i)).Capacity(spectest.Res{"cpu": "8", "memory": "4Gi"}).Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj())
	}
	snap := spectest.Snapshot(nodes, pods...)
	fw, err := schedtest.NewFramework(profiles.Default(), profiles.Plugins(), &schedtest.Handle{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fw.Schedule(context.Background(), spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1"}).Obj(), snap)
	fe := schedtest.FitError(err)
	if fe == nil {
		t.Fatalf("Schedule = %q, %v; want a FitError", res.Node, err)
	}
	want := "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu."
	if res.Node != "" || fe.Error() != want {
		t.Errorf("node %q, message %q; want none and %q", res.Node, fe.Error(), want)
	}
	if st := res.Rejected["small-0"]; st.Code != spec.Unschedulable {
		t.Errorf("insufficient cpu code = %v, want Unschedulable (preemption may help)", st.Code)
	}
	res, err = fw.Schedule(context.Background(), spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "3"}).Obj(), snap)
	if schedtest.FitError(err) == nil {
		t.Fatalf("Schedule = %q, %v; want a FitError", res.Node, err)
	}
	if st := res.Rejected["small-0"]; st.Code != spec.UnschedulableAndUnresolvable {
		t.Errorf("request above the node's allocatable: code = %v, want UnschedulableAndUnresolvable", st.Code)
	}
	if st := res.Rejected["gpu-0"]; st.Code != spec.UnschedulableAndUnresolvable {
		t.Errorf("taint code = %v, want UnschedulableAndUnresolvable", st.Code)
	}
}

func TestProfilesChooseAsDesigned(t *testing.T) {
	nodes := []*corev1.Node{
		spectest.MakeNode().Name("a-busy").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj(),
		spectest.MakeNode().Name("b-empty").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj(),
		spectest.MakeNode().Name("c-half").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj(),
		spectest.MakeNode().Name("d-tainted").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Taint("x", "y", corev1.TaintEffectNoSchedule).Obj(),
	}
	pods := []*corev1.Pod{
		spectest.MakePod().Name("a1").Node("a-busy").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(),
		spectest.MakePod().Name("a2").Node("a-busy").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(),
		spectest.MakePod().Name("a3").Node("a-busy").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(),
		spectest.MakePod().Name("c1").Node("c-half").Req(spectest.Res{"cpu": "2", "memory": "4Gi"}).Obj(),
	}
	snap := spectest.Snapshot(nodes, pods...)
	pod := spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "500m", "memory": "1Gi"}).Obj()
	want := map[string]string{
		"default-scheduler":  "b-empty", // LeastAllocated
		"binpack-scheduler":  "a-busy",
		"spread-scheduler":   "b-empty",
		"firstfit-scheduler": "a-busy",
	}
	for _, prof := range profiles.All() {
		fw, err := schedtest.NewFramework(prof, profiles.Plugins(), &schedtest.Handle{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := fw.Schedule(context.Background(), pod, snap)
		if err != nil {
			t.Fatalf("%s: %v", prof.SchedulerName, err)
		}
		if res.Node == "d-tainted" || res.Node == "" {
			t.Errorf("%s chose %q", prof.SchedulerName, res.Node)
		}
		if w, ok := want[prof.SchedulerName]; ok && res.Node != w {
			t.Errorf("%s chose %s (totals %v of %d feasible nodes), want %s", prof.SchedulerName, res.Node, res.Totals, len(res.Feasible), w)
		}
	}
}

// cluster builds n nodes in 10 zones with pods per node, for benchmarks.
func cluster(n, podsPerNode int) spec.Snapshot {
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	for i := range n {
		name := fmt.Sprintf("node-%05d", i)
		nodes = append(nodes, spectest.MakeNode().Name(name).Label("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%10)).Capacity(spectest.Res{"cpu": "32", "memory": "128Gi"}).Obj())
		for j := range podsPerNode {
			pods = append(pods, spectest.MakePod().Name(fmt.Sprintf("p-%d-%d", i, j)).Label("app", fmt.Sprintf("app-%d", j%5)).Node(name).Req(spectest.Res{"cpu": "500m", "memory": "1Gi"}).Obj())
		}
	}
	return spectest.Snapshot(nodes, pods...)
}

func benchProfile(b *testing.B, prof spec.Profile, pod *corev1.Pod) {
	snap := cluster(5000, 10)
	fw, err := schedtest.NewFramework(prof, profiles.Plugins(), &schedtest.Handle{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := fw.Schedule(context.Background(), pod, snap)
		if err != nil || res.Node == "" {
			b.Fatalf("schedule: %v %v", res.Node, err)
		}
	}
}

// BenchmarkDefaultProfile5000Nodes runs one full (sequential) filter and
// score pass of the default profile over 5 000 nodes with 10 pods each.
func BenchmarkDefaultProfile5000Nodes(b *testing.B) {
	benchProfile(b, profiles.Default(), spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).Obj())
}

// BenchmarkDefaultProfileSpread5000Nodes adds a zone spread constraint and
// a preferred pod anti-affinity.
func BenchmarkDefaultProfileSpread5000Nodes(b *testing.B) {
	w := spectest.MakePod().Name("p").Label("app", "app-1").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).
		Spread(1, "topology.kubernetes.io/zone", corev1.DoNotSchedule, "app", "app-1")
	w.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 10, PodAffinityTerm: spectest.Term(corev1.LabelHostname, "app", "app-1")},
	}}
	benchProfile(b, profiles.Default(), w.Obj())
}

// BenchmarkBinPack5000Nodes is the binpack baseline profile.
func BenchmarkBinPack5000Nodes(b *testing.B) {
	benchProfile(b, profiles.Baselines()[0], spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).Obj())
}

func TestDefaultProfilePreempts(t *testing.T) {
	nodes := []*corev1.Node{
		spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "2", "memory": "4Gi"}).Obj(),
		spectest.MakeNode().Name("n2").Capacity(spectest.Res{"cpu": "2", "memory": "4Gi"}).Taint("x", "y", corev1.TaintEffectNoSchedule).Obj(),
	}
	snap := spectest.Snapshot(nodes,
		spectest.MakePod().Name("low").Node("n1").Priority(1).Req(spectest.Res{"cpu": "2"}).Obj(),
		spectest.MakePod().Name("low2").Node("n2").Priority(0).Req(spectest.Res{"cpu": "2"}).Obj(),
	)
	h := &schedtest.Handle{}
	fw, err := schedtest.NewFramework(profiles.Default(), profiles.Plugins(), h)
	if err != nil {
		t.Fatal(err)
	}
	pod := spectest.MakePod().Name("p").Priority(100).Req(spectest.Res{"cpu": "1"}).Obj()
	res, err := fw.Schedule(context.Background(), pod, snap)
	fe := schedtest.FitError(err)
	if fe == nil || res.Node != "" {
		t.Fatalf("Schedule = %v, %v; want no fit", res.Node, err)
	}
	var nominated string
	for _, pf := range fw.PostFilter {
		var st *spec.Status
		nominated, st = fw.RunPostFilter(context.Background(), nil, &spec.CycleState{}, pod, snap, fe.Statuses, pf)
		if !st.IsSuccess() {
			t.Fatalf("PostFilter: %s", st.Message())
		}
	}
	// n2 is tainted (unresolvable), so its lower-priority pod is not a victim.
	if nominated != "n1" || len(h.Preemptions) != 1 || strings.Join(h.Preemptions[0].Victims, ",") != "low" {
		t.Errorf("nominated %q, preemptions %+v; want n1 with victim low", nominated, h.Preemptions)
	}
}

// BenchmarkPluginsPerNode5000 measures each default-profile plugin's
// Filter and Score over 5 000 nodes (10 pods each); ns/op is per pass.
func BenchmarkPluginsPerNode5000(b *testing.B) {
	benchPlugins(b, spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).Obj())
}

// BenchmarkPluginsPerNode5000Spread is BenchmarkPluginsPerNode5000 for a
// pod with a hard zone spread constraint, a soft hostname one and a
// preferred pod anti-affinity; PreFilter/PreScore (which count the
// matching pods on all nodes) are timed too.
func BenchmarkPluginsPerNode5000Spread(b *testing.B) {
	w := spectest.MakePod().Name("p").Label("app", "app-1").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).
		Spread(1, "topology.kubernetes.io/zone", corev1.DoNotSchedule, "app", "app-1").
		Spread(1, corev1.LabelHostname, corev1.ScheduleAnyway, "app", "app-1")
	w.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
		{Weight: 10, PodAffinityTerm: spectest.Term(corev1.LabelHostname, "app", "app-1")},
	}}
	benchPlugins(b, w.Obj())
}

func benchPlugins(b *testing.B, pod *corev1.Pod) {
	snap := cluster(5000, 10)
	h := &schedtest.Handle{Snap: snap}
	fw, err := schedtest.NewFramework(profiles.Default(), profiles.Plugins(), h)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, pl := range fw.Plugins {
		if pf, ok := pl.(spec.PreFilterPlugin); ok {
			b.Run("PreFilter/"+pl.Name(), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					pf.PreFilter(ctx, &spec.CycleState{}, pod, snap)
				}
			})
		}
		if ps, ok := pl.(spec.PreScorePlugin); ok {
			b.Run("PreScore/"+pl.Name(), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ps.PreScore(ctx, &spec.CycleState{}, pod, snap.Nodes())
				}
			})
		}
		if f, ok := pl.(spec.FilterPlugin); ok {
			b.Run("Filter/"+pl.Name(), func(b *testing.B) {
				state := &spec.CycleState{}
				if pf, ok := pl.(spec.PreFilterPlugin); ok {
					if st := pf.PreFilter(ctx, state, pod, snap); st.IsSkip() {
						b.Skip("PreFilter skips")
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					for _, ni := range snap.Nodes() {
						f.Filter(ctx, state, pod, ni)
					}
				}
			})
		}
		if s, ok := pl.(spec.ScorePlugin); ok {
			b.Run("Score/"+pl.Name(), func(b *testing.B) {
				state := &spec.CycleState{}
				if ps, ok := pl.(spec.PreScorePlugin); ok {
					if st := ps.PreScore(ctx, state, pod, snap.Nodes()); st.IsSkip() {
						b.Skip("PreScore skips")
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					for _, ni := range snap.Nodes() {
						s.Score(ctx, state, pod, ni)
					}
				}
			})
		}
	}
}

func TestLookup(t *testing.T) {
	for name, want := range map[string]string{"default": "default-scheduler", "default-scheduler": "default-scheduler", "binpack": "binpack-scheduler", "random-scheduler": "random-scheduler", "firstfit": "firstfit-scheduler", "spread": "spread-scheduler"} {
		p, err := profiles.Lookup(name)
		if err != nil || p.SchedulerName != want {
			t.Errorf("Lookup(%q) = %q, %v; want %s", name, p.SchedulerName, err, want)
		}
	}
	if _, err := profiles.Lookup("nope"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Lookup(nope) = %v, want ErrNotFound", err)
	}
}
