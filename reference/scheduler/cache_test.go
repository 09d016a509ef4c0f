package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestCacheAssumeConfirmForgetExpireAndSnapshot(t *testing.T) {
	c := newCache(time.Second)
	node := func(name, cpu string) *corev1.Node {
		return spectest.MakeNode().Name(name).Capacity(spectest.Res{corev1.ResourceCPU: cpu}).Obj()
	}
	pod := func(name, nodeName string) *corev1.Pod {
		return spectest.MakePod().Name(name).UID(name).Node(nodeName).Req(spectest.Res{corev1.ResourceCPU: "1"}).Obj()
	}
	c.AddNode(node("a", "4"))
	c.AddNode(node("b", "4"))
	snap := newSnapshot()
	c.UpdateSnapshot(snap)
	if len(snap.Nodes()) != 2 || snap.Nodes()[0].Name() != "a" {
		t.Fatalf("snapshot %v", snap.Nodes())
	}
	old, _ := snap.Get("b")
	free := func(name string) int64 {
		n, err := snap.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		f := n.Free(corev1.ResourceCPU)
		return f.MilliValue()
	}
	// Assumed pods count; the snapshot only changes on update, and only
	// the changed node is cloned.
	if err := c.AssumePod(pod("p1", "a")); err != nil {
		t.Fatal(err)
	}
	if err := c.AssumePod(pod("p1", "a")); err == nil {
		t.Error("assumed twice")
	}
	if free("a") != 4000 {
		t.Errorf("snapshot changed before UpdateSnapshot")
	}
	c.UpdateSnapshot(snap)
	if free("a") != 3000 {
		t.Errorf("free on a: %d", free("a"))
	}
	if n, _ := snap.Get("b"); n != old {
		t.Error("an unchanged node was cloned again")
	}
	// Forget undoes an assumption.
	c.ForgetPod(pod("p1", "a"))
	c.UpdateSnapshot(snap)
	if free("a") != 4000 {
		t.Errorf("after forget: %d", free("a"))
	}
	// Confirmation by the informer replaces the assumed pod; it no longer expires.
	_ = c.AssumePod(pod("p2", "b"))
	c.FinishBinding(pod("p2", "b"), time.Unix(0, 0))
	c.AddPod(pod("p2", "b"))
	if got := c.Cleanup(time.Unix(100, 0)); len(got) != 0 {
		t.Errorf("confirmed pod expired: %v", got)
	}
	// An unconfirmed one expires after the TTL.
	_ = c.AssumePod(pod("p3", "b"))
	c.FinishBinding(pod("p3", "b"), time.Unix(0, 0))
	if got := c.Cleanup(time.Unix(0, int64(500*time.Millisecond))); len(got) != 0 {
		t.Errorf("expired early")
	}
	if got := c.Cleanup(time.Unix(2, 0)); len(got) != 1 || c.IsAssumed("p3") {
		t.Errorf("not expired: %v", got)
	}
	c.UpdateSnapshot(snap)
	if free("b") != 3000 {
		t.Errorf("free on b: %d", free("b"))
	}
	// A heartbeat-only update does not touch the snapshot; a relevant one does.
	hb := node("b", "4")
	hb.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	before, _ := snap.Get("b")
	c.UpdateNode(hb, false)
	c.UpdateSnapshot(snap)
	if n, _ := snap.Get("b"); n != before {
		t.Error("heartbeat re-cloned the node")
	}
	c.UpdateNode(node("b", "8"), true)
	c.UpdateSnapshot(snap)
	if free("b") != 7000 {
		t.Errorf("after allocatable change: %d", free("b"))
	}
	// Deleting a node with pods keeps them counted off the list.
	c.RemoveNode("b")
	c.UpdateSnapshot(snap)
	if len(snap.Nodes()) != 1 || c.HasNode("b") {
		t.Errorf("nodes %d", len(snap.Nodes()))
	}
	c.AddNode(node("b", "4"))
	c.UpdateSnapshot(snap)
	if free("b") != 3000 {
		t.Errorf("re-added b forgot its pod: %d", free("b"))
	}
}

func TestNominatedPodsKeepTheirRoom(t *testing.T) {
	s, err := New(Config{Client: kubernetesNilClient(), Registry: testRegistry(t, nil),
		Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestFit")}})
	if err != nil {
		t.Fatal(err)
	}
	s.cache.AddNode(spectest.MakeNode().Name("a").Capacity(spectest.Res{corev1.ResourceCPU: "2"}).Obj())
	mk := func(name string, prio int32, cpu string) *spectest.PodWrapper {
		return spectest.MakePod().Name(name).UID(name).Priority(prio).Req(spectest.Res{corev1.ResourceCPU: cpu})
	}
	preemptor := mk("preemptor", 100, "2").NominatedNode("a").Obj()
	s.queue.Add(preemptor)
	s.queue.Add(mk("other", 100, "1").Obj()) // equal priority: must not take the room
	low := mk("low", 0, "1").Obj()
	s.cache.UpdateSnapshot(s.snap)
	fw := s.profiles[DefaultSchedulerName]
	try := func(p *corev1.Pod) (string, error) {
		c := &cycle{prof: fw, state: &spec.CycleState{}, pod: p, nominated: s.queue.Nominated()}
		res, err := s.schedulePod(context.Background(), c, s.snap)
		if err != nil {
			return "", err
		}
		return res.Node, nil
	}
	if _, err := try(low); err == nil || !strings.Contains(err.Error(), "Insufficient cpu") {
		t.Errorf("low-priority pod: %v", err)
	}
	if node, err := try(preemptor); err != nil || node != "a" {
		t.Errorf("preemptor: %q %v", node, err)
	}
	higher := mk("higher", 1000, "1").Obj()
	if node, err := try(higher); err != nil || node != "a" {
		t.Errorf("a higher-priority pod may take the room: %q %v", node, err)
	}
	// Once the preemptor leaves the queue, its room is free.
	s.queue.Delete("preemptor")
	if node, err := try(low); err != nil || node != "a" {
		t.Errorf("after the preemptor left: %q %v", node, err)
	}
}
