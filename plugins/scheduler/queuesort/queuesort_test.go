package queuesort_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/queuesort"
	"github.com/kubelab/kubelab/spec"
)

func TestLess(t *testing.T) {
	pl, err := queuesort.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs := pl.(spec.QueueSortPlugin)
	pods := []*corev1.Pod{
		schedtest.MakePod("low-old").Priority(-5).Created(1).Obj(),
		schedtest.MakePod("default-new").Created(20).Obj(),
		schedtest.MakePod("high-new").Priority(1000).Created(30).Obj(),
		schedtest.MakePod("default-old-b").Created(10).Obj(),
		schedtest.MakePod("default-old-a").Priority(0).Created(10).Obj(),
		schedtest.MakePod("high-old").Priority(1000).Created(5).Obj(),
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		if qs.Less(a, b) {
			return -1
		}
		if qs.Less(b, a) {
			return 1
		}
		return 0
	})
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"high-old", "high-new", "default-old-a", "default-old-b", "default-new", "low-old"}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}
