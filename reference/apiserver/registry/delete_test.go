package registry

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func builtinTable(t *testing.T) *Table {
	t.Helper()
	table, err := NewTable(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestDecideDelete: what a delete does is decided from the object, the
// options and the clock alone, before any effect.
func TestDecideDelete(t *testing.T) {
	table := builtinTable(t)
	pods, cms, nss := table.Lookup("", "v1", "pods"), table.Lookup("", "v1", "configmaps"), table.Lookup("", "v1", "namespaces")
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	earlier := metav1.NewTime(now.Add(-time.Minute))
	meta := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u1", ResourceVersion: "7", Generation: 1}
	cm := &corev1.ConfigMap{ObjectMeta: meta}
	withFinalizer := &corev1.ConfigMap{ObjectMeta: *meta.DeepCopy()}
	withFinalizer.Finalizers = []string{"example.com/hold"}
	marked := withFinalizer.DeepCopy()
	marked.DeletionTimestamp, marked.DeletionGracePeriodSeconds = &earlier, ptr.To[int64](0)
	boundPod := &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	finishedPod := boundPod.DeepCopy()
	finishedPod.Status.Phase = corev1.PodSucceeded
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", UID: "u2", ResourceVersion: "3", Generation: 1},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	terminating := ns.DeepCopy()
	terminating.DeletionTimestamp, terminating.DeletionGracePeriodSeconds, terminating.Status.Phase = &earlier, ptr.To[int64](0), corev1.NamespaceTerminating
	finalized := ns.DeepCopy()
	finalized.Spec.Finalizers = nil
	orphan, foreground, bogus := metav1.DeletePropagationOrphan, metav1.DeletePropagationForeground, metav1.DeletionPropagation("Sideways")

	cases := []struct {
		name string
		r    *Resource
		cur  runtime.Object
		opts metav1.DeleteOptions
		// want
		remove, marks, terminating bool
		gc                         string
		grace                      int64
		code                       int32 // error status, 0 for none
	}{
		{name: "plain object is removed", r: cms, cur: cm, remove: true},
		{name: "finalizer holds it: marked", r: cms, cur: withFinalizer, marks: true},
		{name: "marked already: nothing to write", r: cms, cur: marked},
		{name: "bound running pod: marked with its grace period", r: pods, cur: boundPod, marks: true, grace: 30},
		{name: "bound pod, grace 0: removed", r: pods, cur: boundPod, opts: metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, remove: true},
		{name: "negative grace is 0", r: pods, cur: boundPod, opts: metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](-5)}, remove: true},
		{name: "finished pod: removed", r: pods, cur: finishedPod, remove: true},
		{name: "orphan: marked with the orphan finalizer", r: cms, cur: cm, opts: metav1.DeleteOptions{PropagationPolicy: &orphan}, marks: true, gc: metav1.FinalizerOrphanDependents},
		{name: "foreground: marked with foregroundDeletion", r: cms, cur: cm, opts: metav1.DeleteOptions{PropagationPolicy: &foreground}, marks: true, gc: metav1.FinalizerDeleteDependents},
		{name: "unknown propagation policy", r: cms, cur: cm, opts: metav1.DeleteOptions{PropagationPolicy: &bogus}, code: 422},
		{name: "uid precondition", r: cms, cur: cm, opts: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("other"))}}, code: 409},
		{name: "resourceVersion precondition", r: cms, cur: cm, opts: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: ptr.To("6")}}, code: 409},
		{name: "matching preconditions", r: cms, cur: cm, opts: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("u1")), ResourceVersion: ptr.To("7")}}, remove: true},
		{name: "namespace: marked Terminating, held by spec.finalizers", r: nss, cur: ns, marks: true, terminating: true},
		{name: "terminating namespace: nothing to write", r: nss, cur: terminating},
		{name: "namespace without finalizers: removed", r: nss, cur: finalized, remove: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.cur.DeepCopyObject()
			d, err := decideDelete(c.r, c.cur, c.opts, now)
			if !semanticEqual(before, c.cur) {
				t.Fatalf("decideDelete changed its input")
			}
			if c.code != 0 {
				if st, ok := err.(apierrors.APIStatus); !ok || st.Status().Code != c.code {
					t.Fatalf("err %v, want status %d", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.remove != c.remove || (d.marked != nil) != c.marks || d.gcFinalizer != c.gc {
				t.Fatalf("decision %+v, want remove=%v marks=%v gc=%q", d, c.remove, c.marks, c.gc)
			}
			if n, ok := d.marked.(*corev1.Namespace); ok && (n.Status.Phase == corev1.NamespaceTerminating) != c.terminating {
				t.Fatalf("namespace phase %q, want Terminating=%v", n.Status.Phase, c.terminating)
			}
			if d.marked == nil {
				return
			}
			m := objectMeta(d.marked)
			if ts := m.GetDeletionTimestamp(); ts == nil || !ts.Equal(ptr.To(metav1.NewTime(now.Add(time.Duration(c.grace)*time.Second)))) {
				t.Fatalf("deletionTimestamp %v, want now+%ds", ts, c.grace)
			}
			wantGen := int64(2)
			if c.r.NoGeneration {
				wantGen = 1
			}
			if deref(m.GetDeletionGracePeriodSeconds()) != c.grace || m.GetGeneration() != wantGen {
				t.Fatalf("grace %v generation %d", m.GetDeletionGracePeriodSeconds(), m.GetGeneration())
			}
			if c.gc != "" && !slices.Contains(m.GetFinalizers(), c.gc) {
				t.Fatalf("finalizers %v lack %q", m.GetFinalizers(), c.gc)
			}
			if d.result(c.cur) != d.marked {
				t.Fatalf("a pending delete answers with the marked object")
			}
		})
	}
}
