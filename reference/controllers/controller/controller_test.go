package controller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubelab/kubelab/spec/spectest"
)

func TestExpectations(t *testing.T) {
	now := time.Unix(1000, 0)
	e := NewExpectations()
	e.Now = func() time.Time { return now }
	if !e.Satisfied("k") {
		t.Fatal("nothing recorded must be satisfied")
	}
	e.ExpectCreations("k", 2)
	if e.Satisfied("k") {
		t.Fatal("outstanding creations must not be satisfied")
	}
	e.CreationObserved("k")
	if e.Satisfied("k") {
		t.Fatal("one creation still outstanding must not be satisfied")
	}
	e.LowerCreations("k", 1)
	if !e.Satisfied("k") {
		t.Fatal("all creations observed or failed must be satisfied")
	}
	e.ExpectDeletions("k", []string{"ns/a", "ns/b"})
	e.DeletionObserved("k", "ns/other")
	if a, d := e.Pending("k"); a != 0 || d != 2 {
		t.Fatalf("a deletion nobody expected counted: Pending = %d,%d", a, d)
	}
	e.DeletionObserved("k", "ns/a")
	e.DeletionObserved("k", "ns/a")
	if e.Satisfied("k") {
		t.Fatal("ns/b still outstanding must not be satisfied")
	}
	e.DeletionObserved("k", "ns/b")
	if !e.Satisfied("k") {
		t.Fatal("all deletions observed must be satisfied")
	}
	e.ExpectCreations("k", 5)
	now = now.Add(ExpectationsTimeout + time.Second)
	if !e.Satisfied("k") {
		t.Fatal("expired expectations must be satisfied")
	}
	e.Delete("k")
	if a, d := e.Pending("k"); a != 0 || d != 0 {
		t.Fatal("Delete must forget")
	}
}

func TestDecide(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	now := metav1.Now()
	owner := &metav1.ObjectMeta{Name: "rs", UID: "rs-uid"}
	deletingOwner := &metav1.ObjectMeta{Name: "rs", UID: "rs-uid", DeletionTimestamp: &now}
	sel := labels.SelectorFromSet(labels.Set{"app": "web"})
	mine := NewControllerRef(owner, gvk)
	other := NewControllerRef(&metav1.ObjectMeta{Name: "x", UID: "other"}, gvk)
	pod := func(l string, refs ...metav1.OwnerReference) *corev1.Pod {
		p := spectest.MakePod().Name("p").Label("app", l).Obj()
		p.OwnerReferences = refs
		return p
	}
	deletingOrphan := pod("web")
	deletingOrphan.DeletionTimestamp = &now
	nonController := NewControllerRef(&metav1.ObjectMeta{Name: "y", UID: "y"}, gvk)
	nonController.Controller = nil
	for _, tc := range []struct {
		name  string
		owner metav1.Object
		obj   metav1.Object
		want  Claim
	}{
		{"owned and matching is kept", owner, pod("web", mine), Keep},
		{"owned but no longer matching is released", owner, pod("db", mine), Release},
		{"owned, not matching, owner deleting: ignored", deletingOwner, pod("db", mine), Ignore},
		{"matching orphan is adopted", owner, pod("web"), Adopt},
		{"orphan with a non-controller owner is adopted", owner, pod("web", nonController), Adopt},
		{"non-matching orphan is ignored", owner, pod("db"), Ignore},
		{"owner being deleted adopts nothing", deletingOwner, pod("web"), Ignore},
		{"orphan being deleted is not adopted", owner, deletingOrphan, Ignore},
		{"another controller's object is ignored", owner, pod("web", other), Ignore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.owner, sel, tc.obj); got != tc.want {
				t.Fatalf("Decide = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsPodAvailable(t *testing.T) {
	now := time.Unix(1000, 0)
	ready := func(since time.Time) *corev1.Pod {
		p := spectest.MakePod().Name("p").Obj()
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}
		return p
	}
	notReady := spectest.MakePod().Name("n").Obj()
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		min  int32
		want bool
	}{
		{"not ready is not available", notReady, 0, false},
		{"ready with minReadySeconds 0 is available", ready(now), 0, true},
		{"ready for less than minReadySeconds is not", ready(now.Add(-5 * time.Second)), 10, false},
		{"ready for exactly minReadySeconds is", ready(now.Add(-10 * time.Second)), 10, true},
		{"ready without a transition time is not, with minReadySeconds", ready(time.Time{}), 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPodAvailable(tc.pod, tc.min, now); got != tc.want {
				t.Fatalf("IsPodAvailable = %v, want %v", got, tc.want)
			}
		})
	}
}
