package podtopologyspread_test

import (
	"fmt"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/podtopologyspread"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

const zone = "topology.kubernetes.io/zone"

func cluster(taintZone2 bool) spec.Snapshot {
	x := spectest.MakeNode().Name("x").Label(zone, "zone2")
	y := spectest.MakeNode().Name("y").Label(zone, "zone2")
	if taintZone2 {
		x.Taint("dedicated", "z2", corev1.TaintEffectNoSchedule)
		y.Taint("dedicated", "z2", corev1.TaintEffectNoSchedule)
	}
	match := func(name, node string) *corev1.Pod {
		return spectest.MakePod().Name(name).Label("foo", "bar").Node(node).Obj()
	}
	other := spectest.MakePod().Name("other").Label("foo", "baz").Node("x").Obj()
	elsewhere := spectest.MakePod().Name("elsewhere").Namespace("kube-system").Label("foo", "bar").Node("y").Obj()
	deleting := match("deleting", "y")
	deleting.DeletionTimestamp = &metav1.Time{}
	return spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("a").Label(zone, "zone1").Obj(),
		spectest.MakeNode().Name("b").Label(zone, "zone1").Obj(),
		x.Obj(), y.Obj(),
		spectest.MakeNode().Name("nolabel").Obj(),
	}, match("a1", "a"), match("a2", "a"), match("b1", "b"), match("x1", "x"), other, elsewhere, deleting)
}

func TestFilter(t *testing.T) {
	pl, err := podtopologyspread.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	skewed := spec.NewStatus(spec.Unschedulable, podtopologyspread.ErrReasonConstraintsNotMatch)
	noLabel := spec.NewStatus(spec.UnschedulableAndUnresolvable, podtopologyspread.ErrReasonNodeLabelNotMatch)
	pod := func(maxSkew int32, key string) *spectest.PodWrapper {
		return spectest.MakePod().Name("p").Label("foo", "bar").Spread(maxSkew, key, corev1.DoNotSchedule, "foo", "bar")
	}
	withPolicy := func(w *spectest.PodWrapper, f func(c *corev1.TopologySpreadConstraint)) *corev1.Pod {
		p := w.Obj()
		f(&p.Spec.TopologySpreadConstraints[0])
		return p
	}
	ignore, honor := corev1.NodeInclusionPolicyIgnore, corev1.NodeInclusionPolicyHonor
	three, two := int32(3), int32(2)
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		taint bool
		node  string
		want  *spec.Status
	}{
		// zone1 has 3 matching pods, zone2 has 1 (other namespace, other
		// labels and terminating pods do not count).
		{"no constraints", spectest.MakePod().Name("p").Obj(), false, "a", nil},
		{"ScheduleAnyway does not filter", spectest.MakePod().Name("p").Spread(1, zone, corev1.ScheduleAnyway, "foo", "bar").Obj(), false, "a", nil},
		{"crowded zone", pod(1, zone).Obj(), false, "a", skewed},
		{"emptier zone", pod(1, zone).Obj(), false, "x", nil},
		{"larger maxSkew", pod(3, zone).Obj(), false, "a", nil},
		{"node without the key", pod(1, zone).Obj(), false, "nolabel", noLabel},
		{"pod not matching its own selector", spectest.MakePod().Name("p").Spread(1, zone, corev1.DoNotSchedule, "foo", "bar").Obj(), false, "a", skewed},
		{"pod not matching its own selector, skew 2 allowed", spectest.MakePod().Name("p").Spread(2, zone, corev1.DoNotSchedule, "foo", "bar").Obj(), false, "a", nil},
		{"hostname: node with one", pod(1, corev1.LabelHostname).Obj(), false, "b", skewed},
		{"hostname: empty node", pod(1, corev1.LabelHostname).Obj(), false, "y", nil},
		{"minDomains above the domain count makes the minimum 0", withPolicy(pod(1, zone), func(c *corev1.TopologySpreadConstraint) { c.MinDomains = &three }), false, "x", skewed},
		{"minDomains met", withPolicy(pod(1, zone), func(c *corev1.TopologySpreadConstraint) { c.MinDomains = &two }), false, "x", nil},
		{"node affinity honoured by default: only zone1 counts", pod(1, zone).NodeSelector(zone, "zone1").Obj(), false, "a", nil},
		{"node affinity ignored", withPolicy(pod(1, zone).NodeSelector(zone, "zone1"), func(c *corev1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &ignore }), false, "a", skewed},
		{"taints ignored by default", pod(1, zone).Obj(), true, "a", skewed},
		{"taints honoured: zone2 is not eligible", withPolicy(pod(1, zone), func(c *corev1.TopologySpreadConstraint) { c.NodeTaintsPolicy = &honor }), true, "a", nil},
		{"matchLabelKeys narrow the selector", func() *corev1.Pod {
			p := pod(1, zone).Label("rev", "2").Obj()
			p.Spec.TopologySpreadConstraints[0].MatchLabelKeys = []string{"rev"}
			return p
		}(), false, "a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, cluster(tc.taint), tc.node), tc.want)
		})
	}
}

func TestScore(t *testing.T) {
	snap := cluster(false)
	pl, err := podtopologyspread.Plugin().New(nil, &schedtest.Handle{Snap: snap})
	if err != nil {
		t.Fatal(err)
	}
	// zone1 holds 3 matching pods and zone2 1; weight log(2+2): raw 4 and 1,
	// normalized 100×(4+1−s)/4; the node without a zone is ignored.
	p := spectest.MakePod().Name("p").Label("foo", "bar").Spread(1, zone, corev1.ScheduleAnyway, "foo", "bar").Obj()
	want := map[string]int64{"a": 25, "b": 25, "x": 100, "y": 100, "nolabel": 0}
	if got := schedtest.RunScore(t, pl, p, snap); !maps.Equal(got, want) {
		t.Errorf("zone scores = %v, want %v", got, want)
	}
	// Hostname spreading: a 2, b 1, x 1, y 0, nolabel 0; weight log(5+2).
	h := spectest.MakePod().Name("p").Label("foo", "bar").Spread(1, corev1.LabelHostname, corev1.ScheduleAnyway, "foo", "bar").Obj()
	got := schedtest.RunScore(t, pl, h, snap)
	if !(got["y"] == 100 && got["nolabel"] == 100 && got["b"] < got["y"] && got["a"] < got["b"] && got["b"] == got["x"]) {
		t.Errorf("hostname scores = %v, want y = nolabel = 100 > b = x > a", got)
	}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("q").Obj(), snap); got != nil {
		t.Errorf("a pod without soft constraints should skip scoring, got %v", got)
	}
}

// TestManyNodes exercises the parallel counting over ≥1024 nodes.
func TestManyNodes(t *testing.T) {
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	for i := range 1200 {
		name := fmt.Sprintf("n%04d", i)
		nodes = append(nodes, spectest.MakeNode().Name(name).Label(zone, fmt.Sprintf("z%d", i%3)).Obj())
		if i%3 == 0 || (i%3 == 1 && i < 300) {
			pods = append(pods, spectest.MakePod().Name("p"+name).Label("foo", "bar").Node(name).Obj())
		}
	}
	snap := spectest.Snapshot(nodes, pods...)
	pl, _ := podtopologyspread.Plugin().New(nil, &schedtest.Handle{Snap: snap})
	pod := spectest.MakePod().Name("p").Label("foo", "bar").Spread(1, zone, corev1.DoNotSchedule, "foo", "bar").Obj()
	skewed := spec.NewStatus(spec.Unschedulable, podtopologyspread.ErrReasonConstraintsNotMatch)
	for node, want := range map[string]*spec.Status{"n0000": skewed, "n0001": skewed, "n0002": nil, "n1199": nil, "n1198": skewed} {
		schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, pod, snap, node), want)
	}
	soft := spectest.MakePod().Name("p").Label("foo", "bar").Spread(1, zone, corev1.ScheduleAnyway, "foo", "bar").Obj()
	got := schedtest.RunScore(t, pl, soft, snap)
	if !(got["n0002"] == 100 && got["n0001"] > got["n0000"] && got["n0000"] < 100) {
		t.Errorf("scores z0 %d, z1 %d, z2 %d; want z2 100 > z1 > z0", got["n0000"], got["n0001"], got["n0002"])
	}
}
