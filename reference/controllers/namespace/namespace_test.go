package namespace

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestPlan(t *testing.T) {
	all := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Verbs: all},
			{Name: "pods", Namespaced: true, Verbs: all},
			{Name: "pods/status", Namespaced: true, Verbs: []string{"get", "patch", "update"}},
			{Name: "bindings", Namespaced: true, Verbs: []string{"create"}},
			{Name: "nodes", Namespaced: false, Verbs: all},
			{Name: "events", Namespaced: true, Verbs: []string{"delete", "list"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Namespaced: true, Verbs: all}}},
		{GroupVersion: "a/b/c", APIResources: []metav1.APIResource{{Name: "things", Namespaced: true, Verbs: all}}},
		nil,
	}
	steps, parse := Plan(lists)
	want := []Step{
		{Resource: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, Collection: true},
		{Resource: schema.GroupVersionResource{Version: "v1", Resource: "events"}, Collection: false},
		{Resource: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Collection: true},
		{Resource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Collection: true},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Fatalf("steps %+v\nwant  %+v", steps, want)
	}
	if len(parse) != 1 || !strings.HasPrefix(parse[0], "a/b/c:") {
		t.Fatalf("parse failures %v, want one for a/b/c", parse)
	}
}

func TestDecide(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(t0.Add(time.Minute))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", DeletionTimestamp: &t0},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	cms := schema.GroupResource{Resource: "configmaps"}
	deploys := schema.GroupResource{Group: "apps", Resource: "deployments"}
	type want struct {
		finalize bool
		requeue  time.Duration
		true     []corev1.NamespaceConditionType
		message  map[corev1.NamespaceConditionType]string
	}
	cases := []struct {
		name string
		c    Content
		want want
	}{
		{name: "empty: finalize, every condition False", want: want{finalize: true}},
		{name: "zero counts are nothing remaining", c: Content{Remaining: map[schema.GroupResource]int{cms: 0}}, want: want{finalize: true}},
		{name: "content remains", c: Content{Remaining: map[schema.GroupResource]int{cms: 2, deploys: 1}}, want: want{
			requeue: time.Second, true: []corev1.NamespaceConditionType{corev1.NamespaceContentRemaining},
			message: map[corev1.NamespaceConditionType]string{corev1.NamespaceContentRemaining: "Some resources are remaining: configmaps has 2 resource instances, deployments.apps has 1 resource instances"}}},
		{name: "finalizers hold content", c: Content{Remaining: map[schema.GroupResource]int{cms: 1}, Finalizers: map[string]int{"example.com/hold": 1}}, want: want{
			requeue: time.Second, true: []corev1.NamespaceConditionType{corev1.NamespaceContentRemaining, corev1.NamespaceFinalizersRemaining},
			message: map[corev1.NamespaceConditionType]string{corev1.NamespaceFinalizersRemaining: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"}}},
		{name: "pods in their grace period: look again at half of it", c: Content{Remaining: map[schema.GroupResource]int{{Resource: "pods"}: 1}, EstimateSeconds: 30}, want: want{
			requeue: 16 * time.Second, true: []corev1.NamespaceConditionType{corev1.NamespaceContentRemaining}}},
		{name: "discovery failed: not finalized though nothing remains", c: Content{DiscoveryFailures: []string{"metrics/v1: 503"}}, want: want{
			requeue: time.Second, true: []corev1.NamespaceConditionType{corev1.NamespaceDeletionDiscoveryFailure},
			message: map[corev1.NamespaceConditionType]string{corev1.NamespaceDeletionDiscoveryFailure: "Discovery failed for some groups, 1 failing: metrics/v1: 503"}}},
		{name: "parse failure", c: Content{ParseFailures: []string{"a/b/c: bad"}}, want: want{
			requeue: time.Second, true: []corev1.NamespaceConditionType{corev1.NamespaceDeletionGVParsingFailure}}},
		{name: "delete failed", c: Content{DeleteFailures: []string{"secrets: forbidden"}}, want: want{
			requeue: time.Second, true: []corev1.NamespaceConditionType{corev1.NamespaceDeletionContentFailure}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(ns, c.c, now)
			if d.Finalize != c.want.finalize || d.RequeueAfter != c.want.requeue {
				t.Fatalf("finalize %v requeue %v, want %v %v", d.Finalize, d.RequeueAfter, c.want.finalize, c.want.requeue)
			}
			if len(d.Conditions) != 5 {
				t.Fatalf("%d conditions, want the 5 deletion conditions: %+v", len(d.Conditions), d.Conditions)
			}
			for _, cond := range d.Conditions {
				wantStatus := corev1.ConditionFalse
				for _, tt := range c.want.true {
					if tt == cond.Type {
						wantStatus = corev1.ConditionTrue
					}
				}
				if cond.Status != wantStatus || cond.Reason == "" || !cond.LastTransitionTime.Equal(&now) {
					t.Errorf("%s: %+v, want status %s, a reason, transition now", cond.Type, cond, wantStatus)
				}
				if m, ok := c.want.message[cond.Type]; ok && cond.Message != m {
					t.Errorf("%s message %q, want %q", cond.Type, cond.Message, m)
				}
			}
		})
	}
}

// TestDecideKeepsTransitionTimes: an unchanged status keeps its
// lastTransitionTime; a changed one moves to now; unrelated conditions stay.
func TestDecideKeepsTransitionTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(t0.Add(time.Minute))
	ns := &corev1.Namespace{Status: corev1.NamespaceStatus{Conditions: []corev1.NamespaceCondition{
		{Type: "Other", Status: corev1.ConditionTrue, LastTransitionTime: t0},
		{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, LastTransitionTime: t0},
		{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionFalse, LastTransitionTime: t0},
	}}}
	d := Decide(ns, Content{}, now)
	got := map[corev1.NamespaceConditionType]metav1.Time{}
	for _, c := range d.Conditions {
		got[c.Type] = c.LastTransitionTime
	}
	other, disc := got["Other"], got[corev1.NamespaceDeletionDiscoveryFailure]
	if len(d.Conditions) != 6 || !other.Equal(&t0) || !disc.Equal(&t0) {
		t.Fatalf("conditions %+v: want Other and the unchanged discovery condition kept at t0", d.Conditions)
	}
	if ts := got[corev1.NamespaceContentRemaining]; !ts.Equal(&now) {
		t.Fatalf("ContentRemaining went False at %v, want now", ts)
	}
	if ns.Status.Conditions[1].Status != corev1.ConditionTrue {
		t.Fatal("Decide changed its input")
	}
}

func TestTerminatingAndWithoutFinalizer(t *testing.T) {
	ts := metav1.Now()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &ts},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"other", corev1.FinalizerKubernetes}}}
	if !Terminating(ns) {
		t.Fatal("a deleted namespace with the kubernetes finalizer is the controller's")
	}
	out := WithoutFinalizer(ns)
	if !reflect.DeepEqual(out.Spec.Finalizers, []corev1.FinalizerName{"other"}) || len(ns.Spec.Finalizers) != 2 {
		t.Fatalf("WithoutFinalizer: %v (input %v)", out.Spec.Finalizers, ns.Spec.Finalizers)
	}
	if Terminating(out) || Terminating(&corev1.Namespace{Spec: ns.Spec}) {
		t.Fatal("without the finalizer, or not deleted: nothing to do")
	}
}
