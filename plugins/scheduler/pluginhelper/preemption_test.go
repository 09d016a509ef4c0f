package pluginhelper_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
)

func pod(name, ns string, prio int32, started time.Time, lbls map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls,
		CreationTimestamp: metav1.NewTime(started.Add(-time.Hour))}}
	p.Spec.Priority = &prio
	st := metav1.NewTime(started)
	p.Status.StartTime = &st
	return p
}

func TestMoreImportant(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hi, lo := pod("hi", "d", 10, t0.Add(time.Minute), nil), pod("lo", "d", 1, t0, nil)
	early, late := pod("early", "d", 1, t0, nil), pod("late", "d", 1, t0.Add(time.Second), nil)
	for _, tc := range []struct {
		a, b *corev1.Pod
		want bool
	}{{hi, lo, true}, {lo, hi, false}, {early, late, true}, {late, early, false}, {early, early, false}} {
		if got := pluginhelper.MoreImportant(tc.a, tc.b); got != tc.want {
			t.Errorf("MoreImportant(%s, %s) = %v, want %v", tc.a.Name, tc.b.Name, got, tc.want)
		}
	}
	noStart := pod("x", "d", 0, t0, nil)
	noStart.Status.StartTime = nil
	if got := pluginhelper.PodStartTime(noStart); !got.Equal(t0.Add(-time.Hour)) {
		t.Errorf("PodStartTime without status.startTime = %v, want the creation time", got)
	}
}

func TestSplitByPDB(t *testing.T) {
	app := map[string]string{"app": "web"}
	pdb := func(ns string, allowed int32, disrupted ...string) *policyv1.PodDisruptionBudget {
		b := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: ns},
			Spec:   policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: app}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed, DisruptedPods: map[string]metav1.Time{}}}
		for _, d := range disrupted {
			b.Status.DisruptedPods[d] = metav1.Now()
		}
		return b
	}
	a, b, c := pod("a", "d", 0, time.Time{}, app), pod("b", "d", 0, time.Time{}, app), pod("c", "d", 0, time.Time{}, nil)
	other := pod("o", "other", 0, time.Time{}, app)
	names := func(ps []*corev1.Pod) (out []string) {
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	for name, tc := range map[string]struct {
		pods            []*corev1.Pod
		pdbs            []*policyv1.PodDisruptionBudget
		violating, fine string
	}{
		"one allowed: the second violates": {[]*corev1.Pod{a, b, c}, []*policyv1.PodDisruptionBudget{pdb("d", 1)}, "[b]", "[a c]"},
		"none allowed":                     {[]*corev1.Pod{a, b}, []*policyv1.PodDisruptionBudget{pdb("d", 0)}, "[a b]", "[]"},
		"other namespace":                  {[]*corev1.Pod{other}, []*policyv1.PodDisruptionBudget{pdb("d", 0)}, "[]", "[o]"},
		"already disrupted is free":        {[]*corev1.Pod{a, b}, []*policyv1.PodDisruptionBudget{pdb("d", 1, "a")}, "[]", "[a b]"},
		"no PDB":                           {[]*corev1.Pod{a}, nil, "[]", "[a]"},
	} {
		v, f := pluginhelper.SplitByPDB(tc.pods, tc.pdbs)
		if got := fmtNames(names(v)); got != tc.violating {
			t.Errorf("%s: violating %s, want %s", name, got, tc.violating)
		}
		if got := fmtNames(names(f)); got != tc.fine {
			t.Errorf("%s: fine %s, want %s", name, got, tc.fine)
		}
	}
}

func fmtNames(n []string) string {
	s := "["
	for i, x := range n {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s + "]"
}

func TestCountMatching(t *testing.T) {
	app := map[string]string{"app": "web"}
	deleting := pod("del", "d", 0, time.Time{}, app)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	pods := []*corev1.Pod{pod("a", "d", 0, time.Time{}, app), pod("b", "d", 0, time.Time{}, nil), pod("o", "other", 0, time.Time{}, app), deleting}
	if n := pluginhelper.CountMatching(pods, labels.SelectorFromSet(app), "d"); n != 1 {
		t.Errorf("CountMatching = %d, want 1 (same namespace, matching, not deleting)", n)
	}
	if n := pluginhelper.CountMatching(pods, labels.Everything(), "d"); n != 0 {
		t.Errorf("CountMatching with an empty selector = %d, want 0", n)
	}
}

func TestAffinityTerm(t *testing.T) {
	owner := pod("owner", "d", 0, time.Time{}, map[string]string{"tenant": "a"})
	term := &corev1.PodAffinityTerm{TopologyKey: "zone", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		MatchLabelKeys: []string{"tenant"}}
	at, err := pluginhelper.ParseAffinityTerm(owner, term, 7)
	if err != nil || at.TopologyKey != "zone" || at.Weight != 7 || !at.Namespaces["d"] {
		t.Fatalf("ParseAffinityTerm = %+v, %v", at, err)
	}
	none := func(string) (labels.Set, bool) { return nil, false }
	for _, tc := range []struct {
		p    *corev1.Pod
		want bool
	}{
		{pod("x", "d", 0, time.Time{}, map[string]string{"app": "web", "tenant": "a"}), true},
		{pod("x", "d", 0, time.Time{}, map[string]string{"app": "web", "tenant": "b"}), false}, // matchLabelKeys
		{pod("x", "other", 0, time.Time{}, map[string]string{"app": "web", "tenant": "a"}), false},
	} {
		if got := at.Matches(tc.p, none); got != tc.want {
			t.Errorf("Matches(%s/%v) = %v, want %v", tc.p.Namespace, tc.p.Labels, got, tc.want)
		}
	}
	term.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
	at, _ = pluginhelper.ParseAffinityTerm(owner, term, 0)
	teamX := func(ns string) (labels.Set, bool) { return labels.Set{"team": "x"}, ns == "other" }
	if !at.Matches(pod("x", "other", 0, time.Time{}, map[string]string{"app": "web", "tenant": "a"}), teamX) {
		t.Error("namespace selector: a pod in a selected namespace does not match")
	}
}
