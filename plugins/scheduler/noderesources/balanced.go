package noderesources

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// BalancedAllocation implements these extension points (checked at compile time).
var (
	_ spec.PreScorePlugin = (*BalancedAllocation)(nil)
	_ spec.ScorePlugin    = (*BalancedAllocation)(nil)
)

// BalancedAllocation is NodeResourcesBalancedAllocation; it implements
// spec.PreScorePlugin and spec.ScorePlugin.
type BalancedAllocation struct {
	resources []ResourceWeight
}

// NewBalancedAllocation builds the plugin from its args (resources; the
// weights are ignored, as upstream).
func NewBalancedAllocation(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(BalancedAllocationName, args, ArgResources); err != nil {
		return nil, err
	}
	r, err := resourcesArg(BalancedAllocationName, args)
	if err != nil {
		return nil, err
	}
	return &BalancedAllocation{resources: r}, nil
}

// Name implements spec.Named.
func (*BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore computes the pod's requests; a best-effort pod (no requests)
// skips scoring, as upstream, so such pods do not pile onto one node.
func (b *BalancedAllocation) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ []*spec.NodeInfo) *spec.Status {
	req := podScoreRequests(pod, b.resources, false)
	bestEffort := true
	for _, v := range req {
		if v != 0 {
			bestEffort = false
			break
		}
	}
	if bestEffort {
		return spec.NewStatus(spec.Skip)
	}
	state.Write(balancedKey, req)
	return nil
}

// Score rewards placing the pod where it improves (or least worsens) the
// balance of the node's resource fractions: each balance is
// (1 - standard deviation of the fractions) × MaxNodeScore, and the score
// is MaxNodeScore/2 + (MaxNodeScore/2 + with − without)/2, as upstream.
func (b *BalancedAllocation) Score(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	var podReq []int64
	if v, err := state.Read(balancedKey); err == nil {
		podReq = v.([]int64)
	} else {
		podReq = podScoreRequests(pod, b.resources, false)
	}
	n := len(b.resources)
	requested, allocated, allocatable := make([]int64, n), make([]int64, n), make([]int64, n)
	nodeUse(node, b.resources, podReq, false, requested, allocated, allocatable)
	with := balance(requested, allocatable)
	without := balance(allocated, allocatable)
	return spec.MaxNodeScore/2 + (spec.MaxNodeScore/2+with-without)/2, nil
}

func balance(requested, allocatable []int64) int64 {
	var fractions [8]float64
	fs := fractions[:0]
	var total float64
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		f := float64(requested[i]) / float64(allocatable[i])
		if f > 1 {
			f = 1
		}
		total += f
		fs = append(fs, f)
	}
	var std float64
	switch {
	case len(fs) == 2:
		std = math.Abs((fs[0] - fs[1]) / 2)
	case len(fs) > 2:
		mean := total / float64(len(fs))
		var sum float64
		for _, f := range fs {
			sum += (f - mean) * (f - mean)
		}
		std = math.Sqrt(sum / float64(len(fs)))
	}
	return int64((1 - std) * float64(spec.MaxNodeScore))
}

// NormalizeScore leaves the scores, already in 0..MaxNodeScore.
func (*BalancedAllocation) NormalizeScore(context.Context, *spec.CycleState, *corev1.Pod, []spec.NodeScore) *spec.Status {
	return nil
}
