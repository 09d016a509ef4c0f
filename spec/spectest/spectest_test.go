package spectest_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestNodeBuilder(t *testing.T) {
	n := spectest.MakeNode().Name("n1").Label("zone", "a").Capacity(spectest.Res{corev1.ResourceCPU: "2"}).
		Taint("k", "v", corev1.TaintEffectNoSchedule).Unschedulable().Obj()
	if n.Name != "n1" || n.Labels[corev1.LabelHostname] != "n1" || n.Labels["zone"] != "a" {
		t.Errorf("meta %+v", n.ObjectMeta)
	}
	for _, rl := range []corev1.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
		if cpu, pods := rl[corev1.ResourceCPU], rl[corev1.ResourcePods]; cpu.MilliValue() != 2000 || pods.Value() != 110 {
			t.Errorf("resources %v: want cpu 2 and the default 110 pods", rl)
		}
	}
	if len(n.Spec.Taints) != 1 || !n.Spec.Unschedulable {
		t.Errorf("spec %+v", n.Spec)
	}
}

func TestPodBuilder(t *testing.T) {
	p := spectest.MakePod().Name("web").Namespace("ns").Req(spectest.Res{corev1.ResourceCPU: "500m"}).
		InitReq(spectest.Res{corev1.ResourceCPU: "1"}).Node("n1").Priority(7).Label("app", "web").Obj()
	if p.Name != "web" || p.Namespace != "ns" || p.UID != "uid-web" || p.Labels["app"] != "web" || p.Spec.NodeName != "n1" || *p.Spec.Priority != 7 {
		t.Errorf("pod %+v", p)
	}
	// The init container's 1 cpu is more than the 500m of the containers.
	if req := spec.PodRequests(p)[corev1.ResourceCPU]; req.MilliValue() != 1000 {
		t.Errorf("effective cpu request %v, want 1", req.String())
	}
	if u := spectest.MakePod().Name("x").UID("given").Obj().UID; u != "given" {
		t.Errorf("UID %q, want the one set", u)
	}
}

func TestSnapshotPlacesPodsOnTheirNodes(t *testing.T) {
	nodes := []*corev1.Node{spectest.MakeNode().Name("b").Obj(), spectest.MakeNode().Name("a").Obj()}
	snap := spectest.Snapshot(nodes,
		spectest.MakePod().Name("p1").Node("a").Obj(),
		spectest.MakePod().Name("p2").Node("a").Obj(),
		spectest.MakePod().Name("elsewhere").Node("c").Obj(),
		spectest.MakePod().Name("pending").Obj())
	a, err := snap.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := snap.Get("b")
	if len(a.Pods) != 2 || len(b.Pods) != 0 || len(snap.Nodes()) != 2 {
		t.Errorf("a has %d pods, b %d, %d nodes; want 2, 0, 2", len(a.Pods), len(b.Pods), len(snap.Nodes()))
	}
}
