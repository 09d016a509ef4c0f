package replicaset

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubelab/kubelab/reference/controllers/controller"
	"github.com/kubelab/kubelab/spec/spectest"
)

// slowInformerController is a controller over a fake clientset whose
// informers are never started: the test feeds the caches by hand, so they
// trail the controller's writes for as long as the test wants.
func slowInformerController(t *testing.T, rs *appsv1.ReplicaSet) (*Controller, informers.SharedInformerFactory, *atomic.Int64, *[]*corev1.Pod) {
	t.Helper()
	cs := fake.NewClientset(rs)
	var creates atomic.Int64
	var created []*corev1.Pod
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		n := creates.Add(1)
		p.Name = fmt.Sprintf("%s%d", p.GenerateName, n)
		created = append(created, p)
		return true, p, nil
	})
	f := informers.NewSharedInformerFactory(cs, 0)
	ctl, err := New(controller.Context{Client: cs, Informers: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(rs); err != nil {
		t.Fatal(err)
	}
	return ctl, f, &creates, &created
}

func TestSlowInformerNeverOverCreates(t *testing.T) {
	rs := spectest.MakeReplicaSet().Replicas(3).Obj()
	ctl, f, creates, created := slowInformerController(t, rs)
	ctx := context.Background()
	if err := ctl.sync(ctx, "default/rs"); err != nil {
		t.Fatal(err)
	}
	if creates.Load() != 3 {
		t.Fatalf("%d creations, want 3", creates.Load())
	}
	// The pod informer has shown nothing yet: syncing again must not
	// create the same three pods again.
	for range 3 {
		if err := ctl.sync(ctx, "default/rs"); err != nil {
			t.Fatal(err)
		}
	}
	if creates.Load() != 3 {
		t.Fatalf("%d creations after resyncs on a stale cache, want 3", creates.Load())
	}
	// Two of the three arrive: still waiting for the third.
	podIdx := f.Core().V1().Pods().Informer().GetIndexer()
	for _, p := range (*created)[:2] {
		_ = podIdx.Add(p)
		ctl.addPod(p)
	}
	if err := ctl.sync(ctx, "default/rs"); err != nil || creates.Load() != 3 {
		t.Fatalf("creations %d (err %v) with one creation unobserved, want 3", creates.Load(), err)
	}
	// The last one arrives, then one pod is deleted by someone else: the
	// controller replaces it, once.
	_ = podIdx.Add((*created)[2])
	ctl.addPod((*created)[2])
	_ = podIdx.Delete((*created)[0])
	ctl.deletePod((*created)[0])
	for range 2 {
		if err := ctl.sync(ctx, "default/rs"); err != nil {
			t.Fatal(err)
		}
	}
	if creates.Load() != 4 {
		t.Fatalf("%d creations, want 4 (one replacement)", creates.Load())
	}
}

func TestAdoptsOrphansAndReleasesMismatches(t *testing.T) {
	rs := spectest.MakeReplicaSet().Replicas(2).Obj()
	ctl, f, creates, _ := slowInformerController(t, rs)
	cs := ctl.ctx.Client.(*fake.Clientset)
	orphan := spectest.MakePod().Name("orphan").Label("app", "rs").Obj()
	strayed := spectest.MakePod().Name("strayed").Label("app", "other").ControlledBy("apps/v1", "ReplicaSet", rs).Obj()
	foreign := spectest.MakePod().Name("foreign").Label("app", "rs").ControlledBy("apps/v1", "ReplicaSet", spectest.MakeReplicaSet().Name("x").Obj()).Obj()
	for _, p := range []*corev1.Pod{orphan, strayed, foreign} {
		_ = f.Core().V1().Pods().Informer().GetIndexer().Add(p)
		_, _ = cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{})
	}
	creates.Store(0)
	cs.ClearActions()
	if err := ctl.sync(context.Background(), "default/rs"); err != nil {
		t.Fatal(err)
	}
	patched := map[string]bool{}
	for _, a := range cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patched[p.GetName()] = true
		}
	}
	if !patched["orphan"] || !patched["strayed"] || patched["foreign"] {
		t.Fatalf("patched %v: want the orphan adopted, the strayed pod released, the foreign one untouched", patched)
	}
	// The adopted orphan counts: one pod is missing, not two.
	if creates.Load() != 1 {
		t.Fatalf("%d creations, want 1", creates.Load())
	}
}
