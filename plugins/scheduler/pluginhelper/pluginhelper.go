// Package pluginhelper is the toolkit for writing a scheduler policy plugin
// (spec.FilterPlugin, spec.ScorePlugin, spec.PostFilterPlugin...): the
// pieces kubelab's own plugins in plugins/scheduler use, public so that a
// third party's plugin behaves the same way without copying them.
//
//   - Scores: DefaultNormalizeScore (upstream's helper of that name).
//   - Arguments: CheckArgs rejects unknown args with spec.ErrInvalid;
//     ArgScore and ScoreEnabled turn a Filter-and-Score plugin's scoring off.
//   - Preemption: MoreImportant and PodStartTime order victims as upstream's
//     DefaultPreemption does; SplitByPDB tells which evictions a
//     PodDisruptionBudget forbids.
//   - Spread and affinity state: CountMatching counts the pods a label
//     selector matches on a node, the unit PodTopologySpread pre-computes
//     per topology domain; ParseAffinityTerm and AffinityTerm.Matches are
//     how InterPodAffinity parses a pod's affinity terms and tells which
//     pods they select.
//   - Parallelism: Chunks and Workers split per-node work over GOMAXPROCS.
//
// Everything here is a pure function of its arguments (Chunks starts
// goroutines and waits for them); nothing keeps state between calls.
package pluginhelper

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	"k8s.io/klog/v2"

	"github.com/kubelab/kubelab/spec"
)

// Logger is passed to the component-helpers taint/toleration functions.
var Logger = klog.Background()

// DefaultNormalizeScore scales scores so the highest becomes maxPriority
// (the kube-scheduler's helper.DefaultNormalizeScore); with reverse, a
// node's score becomes maxPriority minus that. When every score is zero,
// all become maxPriority under reverse and stay zero otherwise.
func DefaultNormalizeScore(maxPriority int64, reverse bool, scores []spec.NodeScore) {
	var highest int64
	for _, s := range scores {
		if s.Score > highest {
			highest = s.Score
		}
	}
	if highest == 0 {
		if reverse {
			for i := range scores {
				scores[i].Score = maxPriority
			}
		}
		return
	}
	for i := range scores {
		s := scores[i].Score * maxPriority / highest
		if reverse {
			s = maxPriority - s
		}
		scores[i].Score = s
	}
}

// CheckArgs returns an error wrapping spec.ErrInvalid when args holds a key
// not in known.
func CheckArgs(plugin string, args map[string]string, known ...string) error {
	var unknown []string
	for k := range args {
		ok := false
		for _, n := range known {
			if k == n {
				ok = true
				break
			}
		}
		if !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if len(known) == 0 {
		return fmt.Errorf("scheduler plugin %s takes no args, got %s: %w", plugin, strings.Join(unknown, ", "), spec.ErrInvalid)
	}
	return fmt.Errorf("scheduler plugin %s: unknown args %s (known: %s): %w", plugin, strings.Join(unknown, ", "), strings.Join(known, ", "), spec.ErrInvalid)
}

// ArgScore is the arg that turns a Filter-and-Score plugin's scoring off:
// with score=false its PreScore returns Skip, so a profile can use the
// plugin as a filter only (the baseline profiles do).
const ArgScore = "score"

// ScoreEnabled parses ArgScore (default true).
func ScoreEnabled(plugin string, args map[string]string) (bool, error) {
	s, ok := args[ArgScore]
	if !ok {
		return true, nil
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("scheduler plugin %s: %s=%q: want true or false: %w", plugin, ArgScore, s, spec.ErrInvalid)
}

// Chunks splits n items into at most runtime.GOMAXPROCS(0) contiguous
// ranges (one when n is small) and calls fn(worker, lo, hi) for each range
// in its own goroutine, returning when all are done. PreFilter and
// PreScore use it to count pods over thousands of nodes; each worker
// writes only its own partial result, merged by the caller.
func Chunks(n int, fn func(worker, lo, hi int)) (workers int) {
	workers = runtime.GOMAXPROCS(0)
	if n < 1024 || workers < 2 {
		fn(0, 0, n)
		return 1
	}
	size := (n + workers - 1) / workers
	var wg sync.WaitGroup
	w := 0
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			fn(w, lo, hi)
		}(w, lo, hi)
		w++
	}
	wg.Wait()
	return w
}

// Workers returns how many workers Chunks may use for n items.
func Workers(n int) int {
	if w := runtime.GOMAXPROCS(0); n >= 1024 && w >= 2 {
		return w
	}
	return 1
}
