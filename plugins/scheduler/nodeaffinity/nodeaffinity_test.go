package nodeaffinity_test

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeaffinity"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func required(key string, op corev1.NodeSelectorOperator, vals ...string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: vals}}}},
	}}}
}

func TestFilter(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("a").Label("zone", "a").Label("disk", "ssd").Obj(),
		spectest.MakeNode().Name("b").Label("zone", "b").Obj(),
	})
	pl, err := nodeaffinity.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	miss := spec.NewStatus(spec.UnschedulableAndUnresolvable, nodeaffinity.ErrReasonPod)
	withAff := func(a *corev1.Affinity) *corev1.Pod {
		p := spectest.MakePod().Name("p").Obj()
		p.Spec.Affinity = a
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		node string
		want *spec.Status
	}{
		{"no constraints", spectest.MakePod().Name("p").Obj(), "b", nil},
		{"nodeSelector matches", spectest.MakePod().Name("p").NodeSelector("disk", "ssd").Obj(), "a", nil},
		{"nodeSelector misses", spectest.MakePod().Name("p").NodeSelector("disk", "ssd").Obj(), "b", miss},
		{"required In matches", withAff(required("zone", corev1.NodeSelectorOpIn, "b", "c")), "b", nil},
		{"required In misses", withAff(required("zone", corev1.NodeSelectorOpIn, "c")), "a", miss},
		{"required DoesNotExist", withAff(required("disk", corev1.NodeSelectorOpDoesNotExist)), "a", miss},
		{"selector and affinity must both match", func() *corev1.Pod {
			p := withAff(required("zone", corev1.NodeSelectorOpIn, "b"))
			p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
			return p
		}(), "b", miss},
		{"metadata.name field", withAff(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
		}}}), "b", miss},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, snap, tc.node), tc.want)
		})
	}
}

func TestScore(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("a").Label("zone", "a").Label("disk", "ssd").Obj(),
		spectest.MakeNode().Name("b").Label("zone", "b").Label("disk", "ssd").Obj(),
		spectest.MakeNode().Name("c").Label("zone", "c").Obj(),
	})
	pl, _ := nodeaffinity.Plugin().New(nil, nil)
	pref := func(w int32, key, val string) corev1.PreferredSchedulingTerm {
		return corev1.PreferredSchedulingTerm{Weight: w, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{val}}}}}
	}
	p := spectest.MakePod().Name("p").Obj()
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
		pref(2, "disk", "ssd"), pref(6, "zone", "a"),
	}}}
	want := map[string]int64{"a": 100, "b": 25, "c": 0}
	if got := schedtest.RunScore(t, pl, p, snap); !maps.Equal(got, want) {
		t.Errorf("scores = %v, want %v", got, want)
	}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("q").Obj(), snap); got != nil {
		t.Errorf("a pod without preferences should skip scoring, got %v", got)
	}
}
