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
	"github.com/kubelab/kubelab/spec/spectest"
)

func pdb(app string, allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pdb-" + app, Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}

func TestPostFilter(t *testing.T) {
	never := corev1.PreemptNever
	cordoned := spectest.MakeNode().Name("n0").Capacity(spectest.Res{"cpu": "2"}).Unschedulable().Obj()
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
			pods:      []*corev1.Pod{spectest.MakePod().Name("low1").Node("n1").Priority(1).Label("app", "low1").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("low2").Node("n1").Priority(2).Label("app", "low2").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("mid").Node("n2").Priority(5).Label("app", "mid").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("high").Node("n2").Priority(100).Label("app", "high").Req(spectest.Res{"cpu": "1"}).Obj()},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(),
			wantNode:  "n1", victims: []string{"low1"},
		},
		{
			name:      "a PDB reprieves its pod and another is evicted instead",
			pods:      []*corev1.Pod{spectest.MakePod().Name("low1").Node("n1").Priority(1).Label("app", "low1").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("low2").Node("n1").Priority(2).Label("app", "low2").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("mid").Node("n2").Priority(5).Label("app", "mid").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("high").Node("n2").Priority(100).Label("app", "high").Req(spectest.Res{"cpu": "1"}).Obj()},
			pdbs:      []*policyv1.PodDisruptionBudget{pdb("low1", 0)},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(),
			wantNode:  "n1", victims: []string{"low2"},
		},
		{
			name:      "fewest PDB violations wins over lower priority",
			pods:      []*corev1.Pod{spectest.MakePod().Name("low1").Node("n1").Priority(1).Label("app", "low1").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("mid").Node("n2").Priority(5).Label("app", "mid").Req(spectest.Res{"cpu": "2"}).Obj()},
			pdbs:      []*policyv1.PodDisruptionBudget{pdb("low1", 0)},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(),
			wantNode:  "n2", victims: []string{"mid"},
		},
		{
			name:      "lower sum of priorities",
			pods:      []*corev1.Pod{spectest.MakePod().Name("a1").Node("n1").Priority(3).Label("app", "a1").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("a2").Node("n1").Priority(3).Label("app", "a2").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("b1").Node("n2").Priority(3).Label("app", "b1").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("b2").Node("n2").Priority(1).Label("app", "b2").Req(spectest.Res{"cpu": "1"}).Obj()},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "2"}).Obj(),
			wantNode:  "n2", victims: []string{"b1", "b2"},
		},
		{
			name:      "victims cannot make room: not enough lower-priority pods",
			pods:      []*corev1.Pod{spectest.MakePod().Name("high1").Node("n1").Priority(100).Label("app", "high1").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("low").Node("n2").Priority(1).Label("app", "low").Req(spectest.Res{"cpu": "1"}).Obj(), spectest.MakePod().Name("high2").Node("n2").Priority(100).Label("app", "high2").Req(spectest.Res{"cpu": "1"}).Obj()},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "2"}).Obj(),
			wantCode:  spec.Unschedulable,
		},
		{
			name:      "no lower-priority pods",
			pods:      []*corev1.Pod{spectest.MakePod().Name("a").Node("n1").Priority(10).Label("app", "a").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("b").Node("n2").Priority(10).Label("app", "b").Req(spectest.Res{"cpu": "2"}).Obj()},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(),
			wantCode:  spec.Unschedulable,
		},
		{
			name:      "message counts the nodes",
			nodes:     []*corev1.Node{cordoned, spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "2"}).Obj()},
			pods:      []*corev1.Pod{spectest.MakePod().Name("low0").Node("n0").Priority(1).Label("app", "low0").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("high1").Node("n1").Priority(20).Label("app", "high1").Req(spectest.Res{"cpu": "2"}).Obj()},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(),
			wantCode:  spec.Unschedulable,
			wantMsg:   "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
		},
		{
			name: "preemptionPolicy Never",
			pods: []*corev1.Pod{spectest.MakePod().Name("low1").Node("n1").Priority(1).Label("app", "low1").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("low2").Node("n2").Priority(1).Label("app", "low2").Req(spectest.Res{"cpu": "2"}).Obj()},
			preemptor: func() *corev1.Pod {
				p := spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj()
				p.Spec.PreemptionPolicy = &never
				return p
			}(),
			wantCode: spec.Unschedulable,
		},
		{
			name:      "unresolvable nodes are not candidates",
			nodes:     []*corev1.Node{cordoned, spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "2"}).Obj()},
			pods:      []*corev1.Pod{spectest.MakePod().Name("low0").Node("n0").Priority(1).Label("app", "low0").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("low1").Node("n1").Priority(2).Label("app", "low1").Req(spectest.Res{"cpu": "2"}).Obj()},
			preemptor: spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(),
			wantNode:  "n1", victims: []string{"low1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := tc.nodes
			if nodes == nil {
				nodes = []*corev1.Node{spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "2"}).Obj(), spectest.MakeNode().Name("n2").Capacity(spectest.Res{"cpu": "2"}).Obj()}
			}
			snap := spectest.Snapshot(nodes, tc.pods...)
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
	nodes := []*corev1.Node{spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "2"}).Obj(), spectest.MakeNode().Name("n2").Capacity(spectest.Res{"cpu": "2"}).Obj()}
	leaving := spectest.MakePod().Name("leaving").Node("n1").Priority(1).Label("app", "leaving").Req(spectest.Res{"cpu": "2"}).Obj()
	leaving.DeletionTimestamp = &metav1.Time{}
	leaving.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "PreemptionByScheduler"}}
	snap := spectest.Snapshot(nodes, leaving, spectest.MakePod().Name("low").Node("n2").Priority(1).Label("app", "low").Req(spectest.Res{"cpu": "2"}).Obj())
	fit, _ := noderesources.FitPlugin().New(nil, nil)
	h := &schedtest.Handle{Snap: snap, Filters: []spec.Named{fit}}
	pl, _ := defaultpreemption.Plugin().New(nil, h)
	p := spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj()
	p.Status.NominatedNodeName = "n1"
	filtered := map[string]*spec.Status{"n1": spec.NewStatus(spec.Unschedulable, "Insufficient cpu"), "n2": spec.NewStatus(spec.Unschedulable, "Insufficient cpu")}
	node, st := pl.(spec.PostFilterPlugin).PostFilter(context.Background(), &spec.CycleState{}, p, snap, filtered)
	if node != "" || st.IsSuccess() || st.Message() != "preemption: "+defaultpreemption.ReasonTerminating || len(h.Preemptions) != 0 {
		t.Errorf("PostFilter = %q, %q, preemptions %v; want to wait for the terminating victim", node, st.Message(), h.Preemptions)
	}
}

func TestPDBWithDisruptedPodIsNotViolated(t *testing.T) {
	nodes := []*corev1.Node{spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "2"}).Obj(), spectest.MakeNode().Name("n2").Capacity(spectest.Res{"cpu": "2"}).Obj()}
	snap := spectest.Snapshot(nodes, spectest.MakePod().Name("low1").Node("n1").Priority(1).Label("app", "low1").Req(spectest.Res{"cpu": "2"}).Obj(), spectest.MakePod().Name("mid").Node("n2").Priority(5).Label("app", "mid").Req(spectest.Res{"cpu": "2"}).Obj())
	budget := pdb("low1", 0)
	budget.Status.DisruptedPods = map[string]metav1.Time{"low1": {}}
	fit, _ := noderesources.FitPlugin().New(nil, nil)
	h := &schedtest.Handle{Snap: snap, PDBs: []*policyv1.PodDisruptionBudget{budget}, Filters: []spec.Named{fit}}
	pl, _ := defaultpreemption.Plugin().New(nil, h)
	filtered := map[string]*spec.Status{"n1": spec.NewStatus(spec.Unschedulable, "Insufficient cpu"), "n2": spec.NewStatus(spec.Unschedulable, "Insufficient cpu")}
	node, st := pl.(spec.PostFilterPlugin).PostFilter(context.Background(), &spec.CycleState{}, spectest.MakePod().Name("p").Priority(10).Label("app", "p").Req(spectest.Res{"cpu": "1"}).Obj(), snap, filtered)
	if node != "n1" || !st.IsSuccess() {
		t.Errorf("PostFilter = %q, %v; want n1 (low1 is already counted as disrupted)", node, st.Message())
	}
}
