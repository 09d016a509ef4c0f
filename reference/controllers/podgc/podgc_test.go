package podgc

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/controllers/controller"
	"github.com/kubelab/kubelab/spec/spectest"
)

func victims(vs []Victim) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Pod.Name+"/"+[]string{"terminated", "orphaned", "unscheduled-terminating"}[v.Why])
	}
	return out
}

func TestPlan(t *testing.T) {
	done := func(name string, created int64) *corev1.Pod {
		return spectest.MakePod().Name(name).Node("n1").Phase(corev1.PodSucceeded).Created(created).Obj()
	}
	evictedPod := spectest.MakePod().Name("evicted").Node("n1").Phase(corev1.PodFailed).Created(500).Obj()
	evictedPod.Status.Reason = "Evicted"
	disrupted := spectest.MakePod().Name("disrupted").Node("n1").Phase(corev1.PodFailed).Created(600).Obj()
	disrupted.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
	running := spectest.MakePod().Name("running").Node("n1").Phase(corev1.PodRunning).Obj()
	onGhost := spectest.MakePod().Name("on-ghost").Node("ghost").Phase(corev1.PodRunning).Obj()
	doneOnGhost := spectest.MakePod().Name("done-on-ghost").Node("ghost").Phase(corev1.PodSucceeded).Created(1).Obj()
	unscheduledDeleting := spectest.MakePod().Name("unscheduled").Deleting().Obj()
	unscheduled := spectest.MakePod().Name("pending").Obj()
	for _, tc := range []struct {
		name      string
		pods      []*corev1.Pod
		threshold int
		gone      map[string]bool
		want      []string
	}{
		{"under the threshold nothing goes", []*corev1.Pod{done("a", 1), done("b", 2), running}, 2, nil, nil},
		{"oldest terminated beyond the threshold", []*corev1.Pod{done("new", 300), done("old", 100), done("mid", 200), running}, 1, nil,
			[]string{"old/terminated", "mid/terminated"}},
		{"evicted and disrupted first", []*corev1.Pod{done("old", 100), disrupted, evictedPod}, 1, nil,
			[]string{"evicted/terminated", "disrupted/terminated"}},
		{"threshold 0 never collects for the count", []*corev1.Pod{done("a", 1), done("b", 2)}, 0, nil, nil},
		{"pods of a gone node", []*corev1.Pod{onGhost, running}, 10, map[string]bool{"ghost": true}, []string{"on-ghost/orphaned"}},
		{"a node not confirmed gone keeps its pods", []*corev1.Pod{onGhost}, 10, nil, nil},
		{"each pod once", []*corev1.Pod{doneOnGhost, done("b", 2)}, 1, map[string]bool{"ghost": true}, []string{"done-on-ghost/terminated"}},
		{"unscheduled terminating pods; unscheduled live ones stay", []*corev1.Pod{unscheduledDeleting, unscheduled}, 10, nil,
			[]string{"unscheduled/unscheduled-terminating"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := victims(Plan(tc.pods, tc.threshold, tc.gone)); !slices.Equal(got, tc.want) {
				t.Fatalf("Plan = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQuarantine(t *testing.T) {
	var q Quarantine
	t0 := time.Unix(1000, 0)
	pods := []*corev1.Pod{spectest.MakePod().Name("a").Node("ghost").Obj(), spectest.MakePod().Name("b").Node("real").Obj(),
		spectest.MakePod().Name("c").Node("flaky").Obj()}
	exists := map[string]bool{"real": true}
	has := func(n string) bool { return exists[n] }
	if due := q.Observe(pods, has, t0, 40*time.Second); len(due) != 0 {
		t.Fatalf("due at once: %v", due)
	}
	if due := q.Observe(pods, has, t0.Add(39*time.Second), 40*time.Second); len(due) != 0 {
		t.Fatalf("due before the quarantine: %v", due)
	}
	exists["flaky"] = true // came back: forgotten
	if due := q.Observe(pods, has, t0.Add(40*time.Second), 40*time.Second); !slices.Equal(due, []string{"ghost"}) {
		t.Fatalf("due %v, want [ghost]", due)
	}
	delete(exists, "flaky") // missing again: the quarantine starts over
	due := q.Observe(pods, has, t0.Add(50*time.Second), 40*time.Second)
	sort.Strings(due)
	if !slices.Equal(due, []string{"ghost"}) {
		t.Fatalf("due %v, want [ghost]", due)
	}
}

// TestCollectsAgainstAPIServer runs the collector on kubelab's API server:
// a pod on a node that does not exist is marked Failed (DisruptionTarget,
// DeletionByPodGC) and removed after the quarantine; a pod on an existing
// node stays.
func TestCollectsAgainstAPIServer(t *testing.T) {
	api := apiservertest.Start(t, nil)
	cs := api.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := cs.CoreV1().Nodes().Create(ctx, spectest.MakeNode().Name("real").Obj(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{spectest.MakePod().Name("orphan").Node("ghost").Image("img").Obj(), spectest.MakePod().Name("kept").Node("real").Image("img").Obj()} {
		p.UID = ""
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	ctl, err := NewWithOptions(controller.Context{Client: cs, Informers: f, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Options{GCPeriod: 50 * time.Millisecond, Quarantine: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	defer func() { cancel(); f.Shutdown() }()
	go ctl.Run(ctx)
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		return err != nil, nil
	}); err != nil {
		t.Fatalf("orphan not collected: %v", err)
	}
	if _, err := cs.CoreV1().Pods("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("pod on an existing node collected: %v", err)
	}
}
