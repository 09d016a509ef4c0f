package queuesort_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/queuesort"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestLess(t *testing.T) {
	pl, err := queuesort.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs := pl.(spec.QueueSortPlugin)
	pods := []*corev1.Pod{
		spectest.MakePod().Name("low-old").Priority(-5).Created(1).Obj(),
		spectest.MakePod().Name("default-new").Created(20).Obj(),
		spectest.MakePod().Name("high-new").Priority(1000).Created(30).Obj(),
		spectest.MakePod().Name("default-old-b").Created(10).Obj(),
		spectest.MakePod().Name("default-old-a").Priority(0).Created(10).Obj(),
		spectest.MakePod().Name("high-old").Priority(1000).Created(5).Obj(),
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
