package interpodaffinity_test

import (
	"fmt"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/interpodaffinity"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

const zone = "topology.kubernetes.io/zone"

// nsSnapshot adds namespace labels to a snapshot.
type nsSnapshot struct {
	spec.Snapshot
	ns map[string]map[string]string
}

func (s nsSnapshot) NamespaceLabels(name string) (map[string]string, bool) {
	l, ok := s.ns[name]
	return l, ok
}

func cluster() spec.Snapshot {
	db := spectest.MakePod().Name("db").Label("app", "db").Node("n3")
	db.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{spectest.Term(zone, "app", "web")}}
	return spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("n1").Label(zone, "z1").Obj(),
		spectest.MakeNode().Name("n2").Label(zone, "z1").Obj(),
		spectest.MakeNode().Name("n3").Label(zone, "z2").Obj(),
		spectest.MakeNode().Name("bare").Obj(),
	},
		spectest.MakePod().Name("web").Label("app", "web").Node("n1").Obj(),
		spectest.MakePod().Name("batch").Namespace("other").Label("app", "batch").Node("n2").Obj(),
		db.Obj(),
	)
}

func withAffinity(name string, podLabels map[string]string, req []corev1.PodAffinityTerm, anti []corev1.PodAffinityTerm) *corev1.Pod {
	w := spectest.MakePod().Name(name)
	for k, v := range podLabels {
		w.Label(k, v)
	}
	if req != nil {
		w.Affinity().PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: req}
	}
	if anti != nil {
		w.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: anti}
	}
	return w.Obj()
}

func TestFilter(t *testing.T) {
	pl, err := interpodaffinity.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	aff := spec.NewStatus(spec.UnschedulableAndUnresolvable, interpodaffinity.ErrReasonAffinityRulesNotMatch)
	anti := spec.NewStatus(spec.Unschedulable, interpodaffinity.ErrReasonAntiAffinityRulesNotMatch)
	existing := spec.NewStatus(spec.Unschedulable, interpodaffinity.ErrReasonExistingAntiAffinityRulesNotMatch)
	inNS := func(term corev1.PodAffinityTerm, ns []string, sel *metav1.LabelSelector) corev1.PodAffinityTerm {
		term.Namespaces, term.NamespaceSelector = ns, sel
		return term
	}
	webZone := []corev1.PodAffinityTerm{spectest.Term(zone, "app", "web")}
	labelled := nsSnapshot{cluster(), map[string]map[string]string{"default": {}, "other": {"team": "batch"}}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		snap spec.Snapshot
		node string
		want *spec.Status
	}{
		{"no affinity", spectest.MakePod().Name("p").Obj(), nil, "n3", nil},
		{"affinity: same node", withAffinity("p", nil, webZone, nil), nil, "n1", nil},
		{"affinity: same zone", withAffinity("p", nil, webZone, nil), nil, "n2", nil},
		{"affinity: other zone", withAffinity("p", nil, webZone, nil), nil, "n3", aff},
		{"affinity: node without the key", withAffinity("p", nil, webZone, nil), nil, "bare", aff},
		{"affinity: no such pod anywhere", withAffinity("p", nil, []corev1.PodAffinityTerm{spectest.Term(zone, "app", "cache")}, nil), nil, "n3", aff},
		{"affinity: first pod of a self-affine group", withAffinity("p", map[string]string{"app": "cache"}, []corev1.PodAffinityTerm{spectest.Term(zone, "app", "cache")}, nil), nil, "n3", nil},
		{"affinity: other namespace by default is not matched", withAffinity("p", nil, []corev1.PodAffinityTerm{spectest.Term(zone, "app", "batch")}, nil), nil, "n2", aff},
		{"affinity: namespaces list", withAffinity("p", nil, []corev1.PodAffinityTerm{inNS(spectest.Term(zone, "app", "batch"), []string{"other"}, nil)}, nil), nil, "n1", nil},
		{"affinity: empty namespaceSelector means all namespaces", withAffinity("p", nil, []corev1.PodAffinityTerm{inNS(spectest.Term(zone, "app", "batch"), nil, &metav1.LabelSelector{})}, nil), nil, "n2", nil},
		{"affinity: namespaceSelector with namespace labels", withAffinity("p", nil, []corev1.PodAffinityTerm{inNS(spectest.Term(zone, "app", "batch"), nil, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "batch"}})}, nil), labelled, "n2", nil},
		{"affinity: namespaceSelector without namespace labels matches nothing", withAffinity("p", nil, []corev1.PodAffinityTerm{inNS(spectest.Term(zone, "app", "batch"), nil, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "batch"}})}, nil), nil, "n2", aff},
		{"anti-affinity: node with a match", withAffinity("p", nil, nil, []corev1.PodAffinityTerm{spectest.Term(corev1.LabelHostname, "app", "web")}), nil, "n1", anti},
		{"anti-affinity: other node", withAffinity("p", nil, nil, []corev1.PodAffinityTerm{spectest.Term(corev1.LabelHostname, "app", "web")}), nil, "n2", nil},
		{"anti-affinity: zone-wide", withAffinity("p", nil, nil, webZone), nil, "n2", anti},
		{"existing anti-affinity rejects web in z2", spectest.MakePod().Name("p").Label("app", "web").Obj(), nil, "n3", existing},
		{"existing anti-affinity allows web in z1", spectest.MakePod().Name("p").Label("app", "web").Obj(), nil, "n1", nil},
		{"existing anti-affinity ignores other namespaces", spectest.MakePod().Name("p").Namespace("other").Label("app", "web").Obj(), nil, "n3", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := tc.snap
			if snap == nil {
				snap = cluster()
			}
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, snap, tc.node), tc.want)
		})
	}
}

func TestScore(t *testing.T) {
	snap := cluster()
	pl, err := interpodaffinity.Plugin().New(nil, &schedtest.Handle{Snap: snap})
	if err != nil {
		t.Fatal(err)
	}
	w := spectest.MakePod().Name("p")
	w.Affinity().PodAffinity = &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 10, PodAffinityTerm: spectest.Term(zone, "app", "web")}}}
	w.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 5, PodAffinityTerm: spectest.Term(zone, "app", "db")}}}
	// z1 +10, z2 −5, bare 0 → normalized over [−5, 10].
	want := map[string]int64{"n1": 100, "n2": 100, "n3": 0, "bare": 33}
	if got := schedtest.RunScore(t, pl, w.Obj(), snap); !maps.Equal(got, want) {
		t.Errorf("preferred terms: scores = %v, want %v", got, want)
	}

	// An existing pod's required affinity to the incoming pod counts
	// hardPodAffinityWeight; its preferred anti-affinity counts against.
	f := spectest.MakePod().Name("follower").Node("n3")
	f.Affinity().PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{spectest.Term(zone, "app", "leader")}}
	g := spectest.MakePod().Name("loner").Node("n1")
	g.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 3, PodAffinityTerm: spectest.Term(corev1.LabelHostname, "app", "leader")}}}
	snap2 := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("n1").Label(zone, "z1").Obj(),
		spectest.MakeNode().Name("n3").Label(zone, "z2").Obj(),
		spectest.MakeNode().Name("n4").Label(zone, "z1").Obj(),
	}, f.Obj(), g.Obj())
	pl2, _ := interpodaffinity.Plugin().New(map[string]string{"hardPodAffinityWeight": "2"}, &schedtest.Handle{Snap: snap2})
	want2 := map[string]int64{"n1": 0, "n3": 100, "n4": 60}
	if got := schedtest.RunScore(t, pl2, spectest.MakePod().Name("leader").Label("app", "leader").Obj(), snap2); !maps.Equal(got, want2) {
		t.Errorf("existing pods' terms: scores = %v, want %v", got, want2)
	}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("plain").Obj(), spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("n1").Obj()})); got != nil {
		t.Errorf("nothing to score should skip, got %v", got)
	}
}

// TestManyNodes exercises the parallel counting over ≥1024 nodes.
func TestManyNodes(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 1200 {
		nodes = append(nodes, spectest.MakeNode().Name(fmt.Sprintf("n%04d", i)).Label(zone, fmt.Sprintf("z%d", i%4)).Obj())
	}
	db := spectest.MakePod().Name("db").Label("app", "db").Node("n1101")
	db.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{spectest.Term(zone, "app", "web")}}
	snap := spectest.Snapshot(nodes, db.Obj(), spectest.MakePod().Name("cache").Label("app", "cache").Node("n0002").Obj())
	pl, _ := interpodaffinity.Plugin().New(nil, &schedtest.Handle{Snap: snap})
	web := withAffinity("web", map[string]string{"app": "web"}, []corev1.PodAffinityTerm{spectest.Term(zone, "app", "cache")}, nil)
	aff := spec.NewStatus(spec.UnschedulableAndUnresolvable, interpodaffinity.ErrReasonAffinityRulesNotMatch)
	existing := spec.NewStatus(spec.Unschedulable, interpodaffinity.ErrReasonExistingAntiAffinityRulesNotMatch)
	// cache is in z2; db (in z1) rejects web pods in z1.
	for node, want := range map[string]*spec.Status{"n0002": nil, "n1198": nil, "n0001": aff, "n0000": aff} {
		schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, web, snap, node), want)
	}
	plain := spectest.MakePod().Name("web2").Label("app", "web").Obj()
	for node, want := range map[string]*spec.Status{"n0005": existing, "n0004": nil} {
		schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, plain, snap, node), want)
	}
}

func TestMatchLabelKeys(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("n1").Label(zone, "z1").Obj(),
		spectest.MakeNode().Name("n2").Label(zone, "z2").Obj(),
	},
		spectest.MakePod().Name("v1").Label("app", "web").Label("rev", "1").Node("n1").Obj(),
		spectest.MakePod().Name("v2").Label("app", "web").Label("rev", "2").Node("n2").Obj(),
	)
	pl, _ := interpodaffinity.Plugin().New(nil, nil)
	term := spectest.Term(zone, "app", "web")
	term.MismatchLabelKeys = []string{"rev"}
	// Anti-affinity to web pods of other revisions: only n2 (rev 2) is free.
	p := withAffinity("p", map[string]string{"app": "web", "rev": "2"}, nil, []corev1.PodAffinityTerm{term})
	schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, p, snap, "n1"), spec.NewStatus(spec.Unschedulable, interpodaffinity.ErrReasonAntiAffinityRulesNotMatch))
	schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, p, snap, "n2"), nil)
	term.MismatchLabelKeys, term.MatchLabelKeys = nil, []string{"rev"}
	q := withAffinity("q", map[string]string{"rev": "1"}, []corev1.PodAffinityTerm{term}, nil)
	schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, q, snap, "n1"), nil)
	schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, q, snap, "n2"), spec.NewStatus(spec.UnschedulableAndUnresolvable, interpodaffinity.ErrReasonAffinityRulesNotMatch))
}

func TestHandBuiltNodeInfo(t *testing.T) {
	db := spectest.MakePod().Name("db").Label("app", "db").Node("n1")
	db.Affinity().PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{spectest.Term(zone, "app", "web")}}
	// A NodeInfo assembled without the spec helpers has no pod lists.
	ni := &spec.NodeInfo{Node: spectest.MakeNode().Name("n1").Label(zone, "z1").Obj(), Pods: []*corev1.Pod{db.Obj()}}
	pl, _ := interpodaffinity.Plugin().New(nil, nil)
	schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, spectest.MakePod().Name("p").Label("app", "web").Obj(), spec.NewSnapshot([]*spec.NodeInfo{ni}), "n1"),
		spec.NewStatus(spec.Unschedulable, interpodaffinity.ErrReasonExistingAntiAffinityRulesNotMatch))
}
