package scheduler

import (
	"context"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
)

// cycle is one pod's scheduling attempt.
type cycle struct {
	prof    *schedProfile
	state   *spec.CycleState
	pod     *corev1.Pod
	sample  bool
	explain *Explanation
	// nominated are the pods nominated to each node (after preemption).
	nominated map[string][]*corev1.Pod
}

// schedulePod runs the scheduling cycle (spec/framework.Schedule) for the
// cycle's pod on snap with the scheduler's state as its inputs: the
// round-robin start index (advanced here), the percentage of nodes to
// score, the random source for ties, the nominated pods, the extenders and
// the metrics observer. A pod that fits nowhere gives a *framework.FitError;
// anything else is a scheduler error. When the cycle explains, the
// explanation is filled from the Result.
func (s *Scheduler) schedulePod(ctx context.Context, c *cycle, snap *snapshot) (*framework.Result, error) {
	in := framework.Inputs{
		State:                    c.state,
		StartIndex:               s.nextStartNodeIndex,
		PercentageOfNodesToScore: s.percentageFor(c.prof),
		Rand:                     s.rand,
		Nominated:                c.nominated,
		Extenders:                c.prof.hooks,
		AlwaysScore:              c.explain != nil,
		Parallelism:              s.parallelism,
		Observer:                 s.observer(c.prof),
		TimePlugins:              c.sample,
		Scratch:                  &s.scratch,
	}
	res, err := framework.Schedule(ctx, c.prof.Framework, snap, c.pod, in)
	if res != nil {
		s.nextStartNodeIndex = res.NextStartIndex
		if c.explain != nil {
			c.explain.record(res)
		}
	}
	return res, err
}

// percentageFor is the profile's percentageOfNodesToScore, or the
// scheduler's.
func (s *Scheduler) percentageFor(prof *schedProfile) int32 {
	if p := prof.Profile.PercentageOfNodesToScore; p > 0 {
		return p
	}
	return s.cfg.PercentageOfNodesToScore
}

// newRand returns the scheduler's source of tie-breaking randomness.
func newRand() *rand.Rand {
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}
