package pluginhelper_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

func TestDefaultNormalizeScore(t *testing.T) {
	for _, tc := range []struct {
		reverse  bool
		in, want []int64
	}{
		{false, []int64{0, 5, 10}, []int64{0, 50, 100}},
		{true, []int64{0, 5, 10}, []int64{100, 50, 0}},
		{false, []int64{0, 0}, []int64{0, 0}},
		{true, []int64{0, 0}, []int64{100, 100}},
	} {
		scores := make([]spec.NodeScore, len(tc.in))
		for i, s := range tc.in {
			scores[i].Score = s
		}
		pluginhelper.DefaultNormalizeScore(spec.MaxNodeScore, tc.reverse, scores)
		for i := range scores {
			if scores[i].Score != tc.want[i] {
				t.Errorf("reverse=%v %v → %v, want %v", tc.reverse, tc.in, scores, tc.want)
				break
			}
		}
	}
}

func TestCheckArgs(t *testing.T) {
	if err := pluginhelper.CheckArgs("P", map[string]string{"a": "1"}, "a", "b"); err != nil {
		t.Errorf("known arg rejected: %v", err)
	}
	if err := pluginhelper.CheckArgs("P", map[string]string{"c": "1"}, "a"); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("unknown arg: %v, want ErrInvalid", err)
	}
	if err := pluginhelper.CheckArgs("P", map[string]string{"c": "1"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("arg to an arg-less plugin: %v, want ErrInvalid", err)
	}
}

func TestChunksCoverEveryItemOnce(t *testing.T) {
	for _, n := range []int{0, 10, 1024, 5001} {
		seen := make([]atomic.Int32, n)
		workers := pluginhelper.Chunks(n, func(w, lo, hi int) {
			if w >= pluginhelper.Workers(n) {
				t.Errorf("worker %d ≥ Workers(%d)", w, n)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		if workers > pluginhelper.Workers(n) {
			t.Errorf("n=%d: %d workers > Workers %d", n, workers, pluginhelper.Workers(n))
		}
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("n=%d: item %d seen %d times", n, i, seen[i].Load())
			}
		}
	}
}
