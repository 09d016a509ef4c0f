package registry

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Builders for the eviction tests.

func evPod(phase corev1.PodPhase, ready bool, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", ResourceVersion: "5", Labels: labels},
		Status: corev1.PodStatus{Phase: phase}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func budget(name string, sel map[string]string, allowed, current, desired int32) *policyv1.PodDisruptionBudget {
	b := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Generation: 1},
		Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: allowed, CurrentHealthy: current, DesiredHealthy: desired}}
	if sel != nil {
		b.Spec.Selector = &metav1.LabelSelector{MatchLabels: sel}
	}
	return b
}

func statusCode(err error) int32 {
	if st, ok := err.(apierrors.APIStatus); ok {
		return st.Status().Code
	}
	return -1
}

func TestCoveringBudgets(t *testing.T) {
	app := map[string]string{"app": "x"}
	pod := evPod(corev1.PodRunning, true, app)
	other := budget("other-ns", app, 1, 1, 1)
	other.Namespace = "elsewhere"
	empty := budget("empty-selector", nil, 1, 1, 1)
	empty.Spec.Selector = &metav1.LabelSelector{}
	got := coveringBudgets(pod, []*policyv1.PodDisruptionBudget{
		budget("match", app, 1, 1, 1), budget("no-match", map[string]string{"app": "y"}, 1, 1, 1), other, empty, budget("nil-selector", nil, 1, 1, 1),
	})
	if len(got) != 1 || got[0].Name != "match" {
		t.Fatalf("covering budgets: %v", got)
	}
}

// TestPlanEviction: which budget an eviction consults and how the pod is
// deleted, from the pod and its budgets alone (upstream's rules).
func TestPlanEviction(t *testing.T) {
	app := map[string]string{"app": "x"}
	deleting := evPod(corev1.PodRunning, true, app)
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	alwaysAllow := budget("b", app, 0, 0, 3)
	alwaysAllow.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
	clientRV := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: ptr.To("4")}}
	cases := []struct {
		name         string
		pod          *corev1.Pod
		budgets      []*policyv1.PodDisruptionBudget
		opts         metav1.DeleteOptions
		budget       string
		take         bool
		precondition bool
		code         int32
	}{
		{name: "running, no budget", pod: evPod(corev1.PodRunning, true, app)},
		{name: "running ready: takes from its budget", pod: evPod(corev1.PodRunning, true, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 1, 2, 1)}, budget: "b", take: true},
		{name: "pending: no budget, delete at the revision read", pod: evPod(corev1.PodPending, false, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 0, 2, 2)}, precondition: true},
		{name: "pending with the client's precondition", pod: evPod(corev1.PodPending, false, app), opts: clientRV},
		{name: "succeeded: no budget", pod: evPod(corev1.PodSucceeded, false, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 0, 2, 2)}},
		{name: "failed: no budget", pod: evPod(corev1.PodFailed, false, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 0, 2, 2)}},
		{name: "being deleted: no budget", pod: deleting, budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 0, 2, 2)}},
		{name: "two budgets", pod: evPod(corev1.PodRunning, true, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 1, 2, 1), budget("c", app, 1, 2, 1)}, code: http.StatusInternalServerError},
		{name: "unready, budget healthy enough: no disruption taken", pod: evPod(corev1.PodRunning, false, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 0, 2, 2)}, budget: "b", precondition: true},
		{name: "unready, budget short: takes", pod: evPod(corev1.PodRunning, false, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 0, 1, 2)}, budget: "b", take: true},
		{name: "unready, desired 0: takes", pod: evPod(corev1.PodRunning, false, app), budgets: []*policyv1.PodDisruptionBudget{budget("b", app, 1, 0, 0)}, budget: "b", take: true},
		{name: "unready, AlwaysAllow: no disruption taken", pod: evPod(corev1.PodRunning, false, app), budgets: []*policyv1.PodDisruptionBudget{alwaysAllow}, budget: "b", precondition: true},
		{name: "ready, AlwaysAllow: takes", pod: evPod(corev1.PodRunning, true, app), budgets: []*policyv1.PodDisruptionBudget{alwaysAllow}, budget: "b", take: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, pod := c.opts.DeepCopy(), c.pod.DeepCopy()
			p, err := planEviction(c.pod, c.budgets, c.opts)
			if !semanticEqual(opts, &c.opts) || !semanticEqual(pod, c.pod) {
				t.Fatal("planEviction changed its input")
			}
			if c.code != 0 {
				if statusCode(err) != c.code {
					t.Fatalf("err %v, want %d", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.budget != c.budget || p.take != c.take || p.precondition != c.precondition {
				t.Fatalf("plan %+v, want budget %q take %v precondition %v", p, c.budget, c.take, c.precondition)
			}
			rv := p.deleteOptions.Preconditions
			switch {
			case c.precondition && (rv == nil || rv.ResourceVersion == nil || *rv.ResourceVersion != c.pod.ResourceVersion):
				t.Fatalf("delete options %+v lack the pod's revision", p.deleteOptions)
			case !c.precondition && c.opts.Preconditions == nil && rv != nil:
				t.Fatalf("unexpected precondition %+v", rv)
			case c.opts.Preconditions != nil && *rv.ResourceVersion != *c.opts.Preconditions.ResourceVersion:
				t.Fatalf("the client's precondition was replaced: %v", *rv.ResourceVersion)
			}
		})
	}
}

// TestAllowDisruption: whether a budget gives a disruption, and the
// status it then has (upstream's checkAndDecrement).
func TestAllowDisruption(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	app := map[string]string{"app": "x"}
	stale := budget("b", app, 1, 2, 1)
	stale.Generation = 2
	tooMany := budget("b", app, 1, 2, 1)
	tooMany.Status.DisruptedPods = map[string]metav1.Time{}
	for i := 0; i <= MaxDisruptedPods; i++ {
		tooMany.Status.DisruptedPods[fmt.Sprintf("p%d", i)] = now
	}
	cases := []struct {
		name    string
		b       *policyv1.PodDisruptionBudget
		code    int32
		left    int32
		allowed metav1.ConditionStatus // DisruptionAllowed condition; "" for unset
	}{
		{name: "one left: takes it, condition False", b: budget("b", app, 1, 2, 1), left: 0, allowed: metav1.ConditionFalse},
		{name: "two left: takes one, no condition", b: budget("b", app, 2, 3, 1), left: 1},
		{name: "none left", b: budget("b", app, 0, 2, 2), code: http.StatusTooManyRequests},
		{name: "status of an older generation", b: stale, code: http.StatusTooManyRequests},
		{name: "negative", b: budget("b", app, -1, 0, 1), code: http.StatusForbidden},
		{name: "too many unconfirmed", b: tooMany, code: http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.b.DeepCopy()
			got, err := allowDisruption(c.b, "p", now)
			if !semanticEqual(before, c.b) {
				t.Fatal("allowDisruption changed its input")
			}
			if c.code != 0 {
				if statusCode(err) != c.code {
					t.Fatalf("err %v, want %d", err, c.code)
				}
				if c.code == http.StatusTooManyRequests && len(err.(apierrors.APIStatus).Status().Details.Causes) != 1 {
					t.Fatalf("429 without the budget's cause: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.DisruptionsAllowed != c.left || !got.Status.DisruptedPods["p"].Time.Equal(now.Time) {
				t.Fatalf("status %+v", got.Status)
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, policyv1.DisruptionAllowedCondition)
			if (cond == nil) != (c.allowed == "") || (cond != nil && cond.Status != c.allowed) {
				t.Fatalf("DisruptionAllowed condition %+v, want %q", cond, c.allowed)
			}
		})
	}
}

func TestEvictionDeleteOptions(t *testing.T) {
	all := []string{metav1.DryRunAll}
	cases := []struct {
		name      string
		ev        *policyv1.Eviction
		request   bool
		dry, fail bool
	}{
		{name: "neither", ev: &policyv1.Eviction{}},
		{name: "request only", ev: &policyv1.Eviction{}, request: true, dry: true},
		{name: "deleteOptions only", ev: &policyv1.Eviction{DeleteOptions: &metav1.DeleteOptions{DryRun: all}}, dry: true},
		{name: "both", ev: &policyv1.Eviction{DeleteOptions: &metav1.DeleteOptions{DryRun: all}}, request: true, dry: true},
		{name: "request with other options", ev: &policyv1.Eviction{DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](3)}}, request: true, dry: true},
		{name: "unknown dry run value", ev: &policyv1.Eviction{DeleteOptions: &metav1.DeleteOptions{DryRun: []string{"Some"}}}, fail: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, dry, err := evictionDeleteOptions(c.ev, c.request)
			if c.fail {
				if !apierrors.IsInvalid(err) {
					t.Fatalf("want 422, got %v", err)
				}
				return
			}
			if err != nil || dry != c.dry || (len(o.DryRun) > 0) != c.dry {
				t.Fatalf("options %+v dry %v err %v, want dry %v", o, dry, err, c.dry)
			}
			if c.ev.DeleteOptions != nil && c.ev.DeleteOptions.GracePeriodSeconds != nil && *o.GracePeriodSeconds != *c.ev.DeleteOptions.GracePeriodSeconds {
				t.Fatalf("lost the eviction's options: %+v", o)
			}
		})
	}
}
