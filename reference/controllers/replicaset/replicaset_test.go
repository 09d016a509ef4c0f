package replicaset

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/spec/spectest"
)

var now = metav1.NewTime(time.Unix(100000, 0))

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func pod(name string) *spectest.PodWrapper {
	return spectest.MakePod().Name(name).Label("app", "rs").Created(90000)
}

func TestRanked(t *testing.T) {
	// Each case lists pods in the order Ranked must return them.
	for _, tc := range []struct {
		name    string
		pods    []*corev1.Pod
		related []*corev1.Pod
	}{
		{"unassigned before assigned", []*corev1.Pod{pod("unassigned").Ready(1).Obj(), pod("assigned").Node("n").Phase(corev1.PodPending).Obj()}, nil},
		{"pending before unknown before running", []*corev1.Pod{
			pod("pending").Node("n").Phase(corev1.PodPending).Obj(),
			pod("unknown").Node("n").Phase(corev1.PodUnknown).Obj(),
			pod("running").Node("n").Phase(corev1.PodRunning).Obj()}, nil},
		{"not ready before ready", []*corev1.Pod{pod("notready").Node("n").Phase(corev1.PodRunning).Obj(), pod("ready").Node("n").Ready(1).Obj()}, nil},
		{"lower deletion cost first, before the rank", []*corev1.Pod{
			pod("cheap").Node("lonely").Ready(1).Annotation(PodDeletionCostAnnotation, "-5").Obj(),
			pod("default").Node("crowded").Ready(1).Obj(),
			pod("costly").Node("crowded").Ready(1).Annotation(PodDeletionCostAnnotation, "100").Obj()},
			[]*corev1.Pod{pod("x").Node("crowded").Obj(), pod("y").Node("crowded").Obj()}},
		{"malformed deletion cost counts as 0", []*corev1.Pod{
			pod("negative").Node("n").Ready(1).Annotation(PodDeletionCostAnnotation, "-1").Obj(),
			pod("malformed").Node("n").Ready(1).Annotation(PodDeletionCostAnnotation, "lots").Restarts(1).Obj(),
			pod("zero").Node("n").Ready(1).Obj()}, nil},
		{"doubled-up pods first", []*corev1.Pod{pod("crowded").Node("a").Ready(1).Obj(), pod("alone").Node("b").Ready(1).Obj()},
			[]*corev1.Pod{pod("crowded").Node("a").Obj(), pod("sibling").Node("a").Obj(), pod("alone").Node("b").Obj()}},
		{"recently ready before long ready", []*corev1.Pod{pod("new").Node("n").Ready(99990).Obj(), pod("old").Node("n").Ready(50000).Obj()}, nil},
		{"ready times in one log2 bucket fall back to the UID", []*corev1.Pod{
			pod("b").UID("1").Node("n").Ready(99000).Restarts(0).Obj(),
			pod("a").UID("2").Node("n").Ready(99100).Restarts(9).Obj()}, nil},
		{"more restarts first", []*corev1.Pod{pod("flaky").Node("n").Ready(1).Restarts(5).Obj(), pod("stable").Node("n").Ready(1).Restarts(1).Obj()}, nil},
		{"newer before older", []*corev1.Pod{pod("young").Node("n").Ready(1).Created(99999).Obj(), pod("aged").Node("n").Ready(1).Created(1000).Obj()}, nil},
		{"unknown creation time first", []*corev1.Pod{spectest.MakePod().Name("zero").Label("app", "rs").Node("n").Ready(1).Obj(), pod("aged").Node("n").Ready(1).Created(1000).Obj()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, in := range [][]*corev1.Pod{tc.pods, reversed(tc.pods)} {
				got := Ranked(in, tc.related, now)
				if !slices.Equal(names(got), names(tc.pods)) {
					t.Fatalf("Ranked(%v) = %v, want %v", names(in), names(got), names(tc.pods))
				}
			}
		})
	}
}

func reversed(p []*corev1.Pod) []*corev1.Pod {
	r := slices.Clone(p)
	slices.Reverse(r)
	return r
}

func TestManage(t *testing.T) {
	rs := func(n int32) *appsv1.ReplicaSet { return spectest.MakeReplicaSet().Replicas(n).Obj() }
	pods := func(n int) []*corev1.Pod {
		var out []*corev1.Pod
		for i := range n {
			// Ready 10 s, 80 s, 640 s… ago: a different log2 bucket each.
			out = append(out, pod(string(rune('a'+i))).Node("n").Ready(now.Unix()-10<<(3*i)).Obj())
		}
		return out
	}
	notReady := pod("z-notready").Node("n").Phase(corev1.PodRunning).Obj()
	for _, tc := range []struct {
		name       string
		rs         *appsv1.ReplicaSet
		active     []*corev1.Pod
		wantCreate int
		wantDelete []string
	}{
		{"in sync does nothing", rs(3), pods(3), 0, nil},
		{"missing pods are created", rs(5), pods(2), 3, nil},
		{"from zero", rs(3), nil, 3, nil},
		{"creation is capped at burstReplicas", rs(2000), pods(1), BurstReplicas, nil},
		{"surplus deleted, most deletable first", rs(2), append(pods(3), notReady), 0, []string{"z-notready", "a"}},
		{"scale to zero deletes all", rs(0), pods(2), 0, []string{"a", "b"}},
		{"replicas unset means one", func() *appsv1.ReplicaSet { r := rs(1); r.Spec.Replicas = nil; return r }(), nil, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Manage(tc.rs, tc.active, tc.active, now)
			if p.Create != tc.wantCreate || !slices.Equal(names(p.Delete), tc.wantDelete) {
				t.Fatalf("Manage = create %d delete %v, want create %d delete %v", p.Create, names(p.Delete), tc.wantCreate, tc.wantDelete)
			}
		})
	}
}

func TestSlowStartBatch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		count       int
		failAt      int // 1-based call that fails; 0: none
		wantCalls   int
		wantSuccess int
	}{
		{"all succeed in batches 1,2,4,3", 10, 0, 10, 10},
		{"nothing to do", 0, 0, 0, 0},
		{"first call fails: nothing else tried", 10, 1, 1, 0},
		{"a failure in the third batch stops before the fourth", 10, 5, 7, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			got, err := SlowStartBatch(tc.count, 1, func() error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == tc.failAt {
					return errors.New("boom")
				}
				return nil
			})
			if calls != tc.wantCalls || got != tc.wantSuccess || (err != nil) != (tc.failAt != 0) {
				t.Fatalf("calls %d successes %d err %v; want calls %d successes %d", calls, got, err, tc.wantCalls, tc.wantSuccess)
			}
		})
	}
}

func TestCalculateStatus(t *testing.T) {
	ready := func(name string, sinceSec int64) *corev1.Pod { return pod(name).Ready(sinceSec).Obj() }
	unlabelled := pod("partial").Ready(1).Obj()
	base := spectest.MakeReplicaSet().Replicas(4).TemplateLabel("tier", "web").Generation(7)
	full := func(p *corev1.Pod) *corev1.Pod { p.Labels["tier"] = "web"; return p }
	for _, tc := range []struct {
		name                               string
		rs                                 *appsv1.ReplicaSet
		active                             []*corev1.Pod
		terminating                        int
		err                                error
		replicas, fully, readyN, available int32
		wantFailure                        string
	}{
		{"counts and observedGeneration", base.Obj(), []*corev1.Pod{full(ready("a", 1)), full(ready("b", 1)), unlabelled, full(pod("c").Obj())}, 1, nil, 4, 3, 3, 3, ""},
		{"minReadySeconds holds back availability", spectest.MakeReplicaSet().Replicas(2).MinReadySeconds(30).Obj(),
			[]*corev1.Pod{ready("old", now.Unix()-60), ready("fresh", now.Unix()-10)}, 0, nil, 2, 2, 2, 1, ""},
		{"failed creation sets ReplicaFailure FailedCreate", base.Obj(), nil, 0, errors.New("quota"), 0, 0, 0, 0, ReasonFailedCreate},
		{"failed deletion sets ReplicaFailure FailedDelete", spectest.MakeReplicaSet().Replicas(0).Obj(), []*corev1.Pod{ready("a", 1)}, 0, errors.New("x"), 1, 1, 1, 1, ReasonFailedDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := CalculateStatus(tc.rs, tc.active, tc.terminating, tc.err, now)
			if st.Replicas != tc.replicas || st.FullyLabeledReplicas != tc.fully || st.ReadyReplicas != tc.readyN || st.AvailableReplicas != tc.available {
				t.Fatalf("status %+v", st)
			}
			if st.ObservedGeneration != tc.rs.Generation || st.TerminatingReplicas == nil || *st.TerminatingReplicas != int32(tc.terminating) {
				t.Fatalf("observedGeneration/terminating %+v", st)
			}
			var reason string
			for _, c := range st.Conditions {
				if c.Type == ReplicaFailure {
					reason = c.Reason
				}
			}
			if reason != tc.wantFailure {
				t.Fatalf("ReplicaFailure reason %q, want %q", reason, tc.wantFailure)
			}
			if tc.err != nil {
				// The next successful sync clears it.
				rs := tc.rs.DeepCopy()
				rs.Status = st
				if again := CalculateStatus(rs, tc.active, 0, nil, now); len(again.Conditions) != 0 {
					t.Fatalf("condition not cleared: %+v", again.Conditions)
				}
			}
		})
	}
}

func TestPodFromTemplate(t *testing.T) {
	rs := spectest.MakeReplicaSet().Name("web-abc").TemplateLabel("tier", "x").Obj()
	rs.Spec.Template.Annotations = map[string]string{"a": "b"}
	p := PodFromTemplate(rs)
	ref := metav1.GetControllerOf(p)
	if p.GenerateName != "web-abc-" || p.Namespace != "default" || p.Labels["tier"] != "x" || p.Annotations["a"] != "b" ||
		ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || !*ref.BlockOwnerDeletion ||
		p.Spec.Containers[0].Image != "img" {
		t.Fatalf("pod %+v", p)
	}
	p.Labels["tier"] = "changed"
	if rs.Spec.Template.Labels["tier"] != "x" {
		t.Fatal("pod shares the template's labels")
	}
}
