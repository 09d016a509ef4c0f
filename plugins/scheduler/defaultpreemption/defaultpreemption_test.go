package defaultpreemption_test

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/defaultpreemption"
	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/noderesources"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeunschedulable"
	"github.com/kubelab/kubelab/spec"
)

func pod(name, node string, prio int32, cpu string) *corev1.Pod {
	return schedtest.MakePod(name).Node(node).Priority(prio).Label("app", name).Req("cpu", cpu).Obj()
}

func pdb(app string, allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pdb-" + app, Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}

func TestPostFilter(t *testing.T) {
	never := corev1.PreemptNever
	cordoned := schedtest.MakeNode("n0").Alloc("cpu", "2").Unschedulable().Obj()
	for _, tc := range []struct {
		name      string
		nodes     []*corev1.Node
		pods      []*corev1.Pod
		pdbs      []*policyv1.PodDisruptionBudget
		preemptor *corev1.Pod
		wantNode  string
		victims   []string
		wantCode  spec.Code
		wantMsg   string
	}{
		{
			name:      "fewest low-priority victims: n1's highest victim is lowest",
			pods:      []*corev1.Pod{pod("low1", "n1", 1, "1"), pod("low2", "n1", 2, "1"), pod("mid", "n2", 5, "1"), pod("high", "n2", 100, "1")},
			preemptor: pod("p", "", 10, "1"),
			wantNode:  "n1", victims: []string{"low1"},
		},
		{
			name:      "a PDB reprieves its pod and another is evicted instead",
			pods:      []*corev1.Pod{pod("low1", "n1", 1, "1"), pod("low2", "n1", 2, "1"), pod("mid", "n2", 5, "1"), pod("high", "n2", 100, "1")},
			pdbs:      []*policyv1.PodDisruptionBudget{pdb("low1", 0)},
			preemptor: pod("p", "", 10, "1"),
			wantNode:  "n1", victims: []string{"low2"},
		},
		{
			name:      "fewest PDB violations wins over lower priority",
			pods:      []*corev1.Pod{pod("low1", "n1", 1, "2"), pod("mid", "n2", 5, "2")},
			pdbs:      []*policyv1.PodDisruptionBudget{pdb("low1", 0)},
			preemptor: pod("p", "", 10, "1"),
			wantNode:  "n2", victims: []string{"mid"},
		},
		{
			name:      "lower sum of priorities",
			pods:      []*corev1.Pod{pod("a1", "n1", 3, "1"), pod("a2", "n1", 3, "1"), pod("b1", "n2", 3, "1"), pod("b2", "n2", 1, "1")},
			preemptor: pod("p", "", 10, "2"),
			wantNode:  "n2", victims: []string{"b1", "b2"},
		},
		{
			name:      "victims cannot make room: not enough lower-priority pods",
			pods:      []*corev1.Pod{pod("high1", "n1", 100, "2"), pod("low", "n2", 1, "1"), pod("high2", "n2", 100, "1")},
			preemptor: pod("p", "", 10, "2"),
			wantCode:  spec.Unschedulable,
		},
		{
			name:      "no lower-priority pods",
			pods:      []*corev1.Pod{pod("a", "n1", 10, "2"), pod("b", "n2", 10, "2")},
			preemptor: pod("p", "", 10, "1"),
			wantCode:  spec.Unschedulable,
		},
		{
			name:      "message counts the nodes",
			nodes:     []*corev1.Node{cordoned, schedtest.MakeNode("n1").Alloc("cpu", "2").Obj()},
			pods:      []*corev1.Pod{pod("low0", "n0", 1, "2"), pod("high1", "n1", 20, "2")},
			preemptor: pod("p", "", 10, "1"),
			wantCode:  spec.Unschedulable,
			wantMsg:   "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
		},
		{
			name: "preemptionPolicy Never",
			pods: []*corev1.Pod{pod("low1", "n1", 1, "2"), pod("low2", "n2", 1, "2")},
			preemptor: func() *corev1.Pod {
				p := pod("p", "", 10, "1")
				p.Spec.PreemptionPolicy = &never
				return p
			}(),
			wantCode: spec.Unschedulable,
		},
		{
			name:      "unresolvable nodes are not candidates",
			nodes:     []*corev1.Node{cordoned, schedtest.MakeNode("n1").Alloc("cpu", "2").Obj()},
			pods:      []*corev1.Pod{pod("low0", "n0", 1, "2"), pod("low1", "n1", 2, "2")},
			preemptor: pod("p", "", 10, "1"),
			wantNode:  "n1", victims: []string{"low1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := tc.nodes
			if nodes == nil {
				nodes = []*corev1.Node{schedtest.MakeNode("n1").Alloc("cpu", "2").Obj(), schedtest.MakeNode("n2").Alloc("cpu", "2").Obj()}
			}
			snap := schedtest.Snapshot(nodes, tc.pods...)
			fit, _ := noderesources.FitPlugin().New(nil, nil)
			unsched, _ := nodeunschedulable.Plugin().New(nil, nil)
			h := &schedtest.Handle{Snap: snap, PDBs: tc.pdbs, Filters: []spec.Named{unsched, fit}}
			filtered := map[string]*spec.Status{}
			for _, ni := range snap.Nodes() {
				st := h.RunFilterPlugins(context.Background(), tc.preemptor, snap, ni.Name())
				if st.IsSuccess() {
					t.Fatalf("setup: preemptor fits node %s already", ni.Name())
				}
				filtered[ni.Name()] = st
			}
			pl, err := defaultpreemption.Plugin().New(nil, h)
			if err != nil {
				t.Fatal(err)
			}
			node, st := pl.(spec.PostFilterPlugin).PostFilter(context.Background(), &spec.CycleState{}, tc.preemptor, snap, filtered)
			if tc.wantNode == "" {
				if st.IsSuccess() || st.Code != tc.wantCode || node != "" || len(h.Preemptions) != 0 {
					t.Fatalf("PostFilter = %q, %+v, preemptions %v; want code %v and no preemption", node, st, h.Preemptions, tc.wantCode)
				}
				if tc.wantMsg != "" && st.Message() != tc.wantMsg {
					t.Errorf("message %q\nwant    %q", st.Message(), tc.wantMsg)
				}
				return
			}
			if !st.IsSuccess() || node != tc.wantNode {
				t.Fatalf("PostFilter = %q, %v; want node %s", node, st.Message(), tc.wantNode)
			}
			if len(h.Preemptions) != 1 {
				t.Fatalf("preemptions = %v, want one", h.Preemptions)
			}
			got := h.Preemptions[0]
			slices.Sort(got.Victims)
			if got.Node != tc.wantNode || got.Preemptor != tc.preemptor.Name || !slices.Equal(got.Victims, tc.victims) {
				t.Errorf("preemption = %+v, want node %s victims %v", got, tc.wantNode, tc.victims)
			}
		})
	}
}

func TestPostFilterWaitsForEarlierPreemption(t *testing.T) {
	nodes := []*corev1.Node{schedtest.MakeNode("n1").Alloc("cpu", "2").Obj(), schedtest.MakeNode("n2").Alloc("cpu", "2").Obj()}
	leaving := pod("leaving", "n1", 1, "2")
	leaving.DeletionTimestamp = &metav1.Time{}
	leaving.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "PreemptionByScheduler"}}
	snap := schedtest.Snapshot(nodes, leaving, pod("low", "n2", 1, "2"))
	fit, _ := noderesources.FitPlugin().New(nil, nil)
	h := &schedtest.Handle{Snap: snap, Filters: []spec.Named{fit}}
	pl, _ := defaultpreemption.Plugin().New(nil, h)
	p := pod("p", "", 10, "1")
	p.Status.NominatedNodeName = "n1"
	filtered := map[string]*spec.Status{"n1": spec.NewStatus(spec.Unschedulable, "Insufficient cpu"), "n2": spec.NewStatus(spec.Unschedulable, "Insufficient cpu")}
	node, st := pl.(spec.PostFilterPlugin).PostFilter(context.Background(), &spec.CycleState{}, p, snap, filtered)
	if node != "" || st.IsSuccess() || st.Message() != "preemption: "+defaultpreemption.ReasonTerminating || len(h.Preemptions) != 0 {
		t.Errorf("PostFilter = %q, %q, preemptions %v; want to wait for the terminating victim", node, st.Message(), h.Preemptions)
	}
}

func TestPDBWithDisruptedPodIsNotViolated(t *testing.T) {
	nodes := []*corev1.Node{schedtest.MakeNode("n1").Alloc("cpu", "2").Obj(), schedtest.MakeNode("n2").Alloc("cpu", "2").Obj()}
	snap := schedtest.Snapshot(nodes, pod("low1", "n1", 1, "2"), pod("mid", "n2", 5, "2"))
	budget := pdb("low1", 0)
	budget.Status.DisruptedPods = map[string]metav1.Time{"low1": {}}
	fit, _ := noderesources.FitPlugin().New(nil, nil)
	h := &schedtest.Handle{Snap: snap, PDBs: []*policyv1.PodDisruptionBudget{budget}, Filters: []spec.Named{fit}}
	pl, _ := defaultpreemption.Plugin().New(nil, h)
	filtered := map[string]*spec.Status{"n1": spec.NewStatus(spec.Unschedulable, "Insufficient cpu"), "n2": spec.NewStatus(spec.Unschedulable, "Insufficient cpu")}
	node, st := pl.(spec.PostFilterPlugin).PostFilter(context.Background(), &spec.CycleState{}, pod("p", "", 10, "1"), snap, filtered)
	if node != "n1" || !st.IsSuccess() {
		t.Errorf("PostFilter = %q, %v; want n1 (low1 is already counted as disrupted)", node, st.Message())
	}
}
