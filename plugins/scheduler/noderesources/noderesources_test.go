package noderesources_test

import (
	"errors"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/noderesources"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestFitFilter(t *testing.T) {
	nodes := []*corev1.Node{
		spectest.MakeNode().Name("n").Capacity(spectest.Res{"cpu": "4", "memory": "4Gi", "ephemeral-storage": "10Gi", "example.com/gpu": "2", "pods": "3"}).Obj(),
	}
	snap := spectest.Snapshot(nodes,
		spectest.MakePod().Name("a").Node("n").Req(spectest.Res{"cpu": "2", "memory": "1Gi", "example.com/gpu": "1"}).Obj(),
		spectest.MakePod().Name("b").Node("n").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).Obj(),
	)
	full := spectest.Snapshot(nodes,
		spectest.MakePod().Name("a").Node("n").Obj(), spectest.MakePod().Name("b").Node("n").Obj(), spectest.MakePod().Name("c").Node("n").Obj())
	pl, err := noderesources.FitPlugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	un := func(r ...string) *spec.Status { return spec.NewStatus(spec.Unschedulable, r...) }
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		snap spec.Snapshot
		want *spec.Status
	}{
		{"fits", spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(), snap, nil},
		{"no requests fit", spectest.MakePod().Name("p").Obj(), snap, nil},
		{"insufficient cpu", spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1500m"}).Obj(), snap, un("Insufficient cpu")},
		{"insufficient cpu and memory", spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "2", "memory": "3Gi"}).Obj(), snap, un("Insufficient cpu", "Insufficient memory")},
		{"init container dominates", spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "100m"}).InitReq(spectest.Res{"cpu": "2"}).Obj(), snap, un("Insufficient cpu")},
		{"overhead counts", spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "900m"}).Overhead(spectest.Res{"cpu": "200m"}).Obj(), snap, un("Insufficient cpu")},
		{"extended resource", spectest.MakePod().Name("p").Req(spectest.Res{"example.com/gpu": "2"}).Obj(), snap, un("Insufficient example.com/gpu")},
		{"extended resource the node lacks is unresolvable", spectest.MakePod().Name("p").Req(spectest.Res{"example.com/fpga": "1"}).Obj(), snap, spec.NewStatus(spec.UnschedulableAndUnresolvable, "Insufficient example.com/fpga")},
		{"request above allocatable is unresolvable", spectest.MakePod().Name("p").Req(spectest.Res{"memory": "5Gi"}).Obj(), snap, spec.NewStatus(spec.UnschedulableAndUnresolvable, "Insufficient memory")},
		{"ephemeral storage", spectest.MakePod().Name("p").Req(spectest.Res{"ephemeral-storage": "11Gi"}).Obj(), snap, spec.NewStatus(spec.UnschedulableAndUnresolvable, "Insufficient ephemeral-storage")},
		{"too many pods", spectest.MakePod().Name("p").Obj(), full, un("Too many pods")},
		{"too many pods and cpu", spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "5"}).Obj(), full, spec.NewStatus(spec.UnschedulableAndUnresolvable, "Too many pods", "Insufficient cpu")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, tc.snap, "n"), tc.want)
		})
	}
}

func TestFitScore(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("empty").Capacity(spectest.Res{"cpu": "4", "memory": "4Gi"}).Obj(),
		spectest.MakeNode().Name("busy").Capacity(spectest.Res{"cpu": "4", "memory": "4Gi"}).Obj(),
		spectest.MakeNode().Name("nomem").Capacity(spectest.Res{"cpu": "4"}).Obj(),
	}, spectest.MakePod().Name("x").Node("busy").Req(spectest.Res{"cpu": "2", "memory": "1Gi"}).Obj())
	pod := spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1", "memory": "1Gi"}).Obj()
	for _, tc := range []struct {
		args map[string]string
		want map[string]int64
	}{
		// empty: cpu 3/4 free → 75, memory 75 → 75; busy: cpu 1/4 free → 25,
		// memory 2/4 → 50 → 37; nomem: only cpu is scored → 75.
		{nil, map[string]int64{"empty": 75, "busy": 37, "nomem": 75}},
		{map[string]string{"scoringStrategy": "MostAllocated"}, map[string]int64{"empty": 25, "busy": 62, "nomem": 25}},
		// cpu weighted 3: busy (25*3 + 50)/4 = 31.
		{map[string]string{"resources": "cpu=3,memory=1"}, map[string]int64{"empty": 75, "busy": 31, "nomem": 75}},
	} {
		pl, err := noderesources.FitPlugin().New(tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := schedtest.RunScore(t, pl, pod, snap); !maps.Equal(got, tc.want) {
			t.Errorf("args %v: scores = %v, want %v", tc.args, got, tc.want)
		}
	}
	// A pod without requests counts as 100m cpu / 200Mi memory.
	pl, _ := noderesources.FitPlugin().New(map[string]string{"scoringStrategy": "MostAllocated"}, nil)
	got := schedtest.RunScore(t, pl, spectest.MakePod().Name("q").Obj(), snap)
	if got["empty"] == 0 || got["busy"] <= got["empty"] {
		t.Errorf("best-effort pod scores = %v, want non-zero and busy > empty", got)
	}
}

func TestFitArgs(t *testing.T) {
	for _, args := range []map[string]string{
		{"scoringStrategy": "Random"},
		{"resources": "cpu=0"},
		{"resources": "cpu=x"},
		{"bogus": "1"},
	} {
		if _, err := noderesources.FitPlugin().New(args, nil); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("New(%v) = %v, want ErrInvalid", args, err)
		}
	}
}

func TestBalancedAllocation(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("empty").Capacity(spectest.Res{"cpu": "4", "memory": "4Gi"}).Obj(),
		spectest.MakeNode().Name("memheavy").Capacity(spectest.Res{"cpu": "4", "memory": "4Gi"}).Obj(),
	}, spectest.MakePod().Name("x").Node("memheavy").Req(spectest.Res{"memory": "2Gi"}).Obj())
	pl, err := noderesources.BalancedAllocationPlugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A cpu-only pod balances memheavy (0,.5 → .5,.5: 75 → 100, score 87)
	// and unbalances the empty node (0,0 → .5,0: 100 → 75, score 62).
	want := map[string]int64{"empty": 62, "memheavy": 87}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "2"}).Obj(), snap); !maps.Equal(got, want) {
		t.Errorf("scores = %v, want %v", got, want)
	}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("be").Obj(), snap); got != nil {
		t.Errorf("best-effort pod should skip, got %v", got)
	}
}

func TestFitFilterWithoutCounts(t *testing.T) {
	ni := spec.NewNodeInfo(spectest.MakeNode().Name("n").Capacity(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("a").Node("n").Req(spectest.Res{"cpu": "1500m"}).Obj())
	ni.Counts = spec.NodeCounts{} // as if assembled by hand
	if st := noderesources.Fits(spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "1"}).Obj(), ni); st.Message() != "Insufficient cpu" {
		t.Errorf("Fits = %q, want Insufficient cpu", st.Message())
	}
	if st := noderesources.Fits(spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "500m"}).Obj(), ni); !st.IsSuccess() {
		t.Errorf("Fits = %q, want a fit", st.Message())
	}
}

// TestLeastAllocatedUpstreamExample is the kube-scheduler's documented
// example: cpu and memory weighted 1, node1 4000m/10000, node2 6000m/10000,
// pod 3000m/5000 → node1 (25+50)/2 = 37, node2 (50+50)/2 = 50.
func TestLeastAllocatedUpstreamExample(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("node1").Capacity(spectest.Res{"cpu": "4000m", "memory": "10000"}).Obj(),
		spectest.MakeNode().Name("node2").Capacity(spectest.Res{"cpu": "6000m", "memory": "10000"}).Obj(),
	})
	pl, _ := noderesources.FitPlugin().New(nil, nil)
	want := map[string]int64{"node1": 37, "node2": 50}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "3000m", "memory": "5000"}).Obj(), snap); !maps.Equal(got, want) {
		t.Errorf("scores = %v, want %v", got, want)
	}
	// MostAllocated: node1 (75+50)/2 = 62, node2 (50+50)/2 = 50.
	pl, _ = noderesources.FitPlugin().New(map[string]string{"scoringStrategy": "MostAllocated"}, nil)
	want = map[string]int64{"node1": 62, "node2": 50}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "3000m", "memory": "5000"}).Obj(), snap); !maps.Equal(got, want) {
		t.Errorf("MostAllocated scores = %v, want %v", got, want)
	}
}

func TestFitIgnoredResources(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("n").Capacity(spectest.Res{"cpu": "2"}).Obj()})
	pod := spectest.MakePod().Name("p").Req(spectest.Res{"example.com/gpu": "1", "vendor.io/fpga": "1", "cpu": "1"}).Obj()
	for _, tc := range []struct {
		args map[string]string
		want string
	}{
		{nil, "Insufficient example.com/gpu, Insufficient vendor.io/fpga"},
		{map[string]string{"ignoredResources": "example.com/gpu"}, "Insufficient vendor.io/fpga"},
		{map[string]string{"ignoredResourceGroups": "example.com,vendor.io"}, ""},
	} {
		pl, err := noderesources.FitPlugin().New(tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := schedtest.RunFilter(t, pl, pod, snap, "n").Message(); got != tc.want {
			t.Errorf("args %v: %q, want %q", tc.args, got, tc.want)
		}
	}
}
