// Package baselines holds research baseline Score plugins, each meant to be
// the only scorer of a profile next to the usual filters (see package
// profiles):
//
//   - BinPacking: the node that would be fullest after placing the pod
//     (MostAllocated over cpu and memory; args resources=cpu=1,memory=1).
//   - Spread: the node with the fewest pods (ties: the node with the most
//     free cpu and memory).
//   - Random: a pseudo-random node, deterministic given args seed (default
//     0), the pod and the node: the same inputs pick the same node.
//   - FirstFit: the first feasible node in name order.
package baselines

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/noderesources"
	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// BinPacking implements these extension points (checked at compile time).
var (
	_ spec.PreScorePlugin = (*BinPacking)(nil)
	_ spec.ScorePlugin    = (*BinPacking)(nil)
)

// Spread implements these extension points (checked at compile time).
var (
	_ spec.PreScorePlugin = Spread{}
	_ spec.ScorePlugin    = Spread{}
)

// Random implements these extension points (checked at compile time).
var (
	_ spec.ScorePlugin = (*Random)(nil)
)

// FirstFit implements these extension points (checked at compile time).
var (
	_ spec.ScorePlugin = FirstFit{}
)

// Plugin names.
const (
	BinPackingName = "BinPacking"
	SpreadName     = "Spread"
	RandomName     = "Random"
	FirstFitName   = "FirstFit"
)

// ArgSeed is Random's seed (a signed 64-bit integer).
const ArgSeed = "seed"

// Plugins returns the baselines' registry entries.
func Plugins() []spec.SchedulerPlugin {
	return []spec.SchedulerPlugin{BinPackingPlugin(), SpreadPlugin(), RandomPlugin(), FirstFitPlugin()}
}

// BinPackingPlugin returns BinPacking's registry entry.
func BinPackingPlugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: BinPackingName, Description: "Score (baseline): the fullest node after placing the pod (MostAllocated); resources=cpu=1,memory=1", New: NewBinPacking}
}

// SpreadPlugin returns Spread's registry entry.
func SpreadPlugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: SpreadName, Description: "Score (baseline): the node with the fewest pods, then the most free cpu/memory", New: NewSpread}
}

// RandomPlugin returns Random's registry entry.
func RandomPlugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: RandomName, Description: "Score (baseline): a pseudo-random node, deterministic given seed=N", New: NewRandom}
}

// FirstFitPlugin returns FirstFit's registry entry.
func FirstFitPlugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: FirstFitName, Description: "Score (baseline): the first feasible node in name order", New: NewFirstFit}
}

// BinPacking implements spec.ScorePlugin.
type BinPacking struct {
	resources []noderesources.ResourceWeight
}

// NewBinPacking builds BinPacking (args: resources).
func NewBinPacking(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(BinPackingName, args, noderesources.ArgResources); err != nil {
		return nil, err
	}
	b := &BinPacking{resources: noderesources.DefaultResources()}
	if s, ok := args[noderesources.ArgResources]; ok {
		r, err := noderesources.ParseResources(s)
		if err != nil {
			return nil, fmt.Errorf("scheduler plugin %s: %w", BinPackingName, err)
		}
		b.resources = r
	}
	return b, nil
}

// Name implements spec.Named.
func (*BinPacking) Name() string { return BinPackingName }

const binPackingKey = "PreScore" + BinPackingName

// PreScore computes the pod's requests.
func (b *BinPacking) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ []*spec.NodeInfo) *spec.Status {
	state.Write(binPackingKey, noderesources.PodScoreRequests(pod, b.resources))
	return nil
}

// Score is the node's MostAllocated score.
func (b *BinPacking) Score(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	var req []int64
	if v, err := state.Read(binPackingKey); err == nil {
		req = v.([]int64)
	} else {
		req = noderesources.PodScoreRequests(pod, b.resources)
	}
	return noderesources.AllocationScore(noderesources.MostAllocated, node, b.resources, req), nil
}

// NormalizeScore leaves the scores, already in 0..MaxNodeScore.
func (*BinPacking) NormalizeScore(context.Context, *spec.CycleState, *corev1.Pod, []spec.NodeScore) *spec.Status {
	return nil
}

// Spread implements spec.ScorePlugin.
type Spread struct{}

// NewSpread builds Spread; it takes no args.
func NewSpread(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(SpreadName, args); err != nil {
		return nil, err
	}
	return Spread{}, nil
}

// Name implements spec.Named.
func (Spread) Name() string { return SpreadName }

// spreadScale separates the pod count from the LeastAllocated tie-breaker
// in Spread's raw score.
const spreadScale = spec.MaxNodeScore + 1

const spreadKey = "PreScore" + SpreadName

// PreScore computes the pod's requests for the tie-breaker.
func (Spread) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ []*spec.NodeInfo) *spec.Status {
	state.Write(spreadKey, noderesources.PodScoreRequests(pod, defaultResources))
	return nil
}

// Score is the node's pod count, scaled, minus its LeastAllocated score
// as a tie-breaker; NormalizeScore reverses it so fewer pods score higher.
func (Spread) Score(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	var req []int64
	if v, err := state.Read(spreadKey); err == nil {
		req = v.([]int64)
	} else {
		req = noderesources.PodScoreRequests(pod, defaultResources)
	}
	least := noderesources.AllocationScore(noderesources.LeastAllocated, node, defaultResources, req)
	return int64(len(node.Pods))*spreadScale + (spec.MaxNodeScore - least), nil
}

var defaultResources = noderesources.DefaultResources()

// NormalizeScore maps the lowest raw score to MaxNodeScore and the highest
// to 0, linearly.
func (Spread) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	if len(scores) == 0 {
		return nil
	}
	lo, hi := scores[0].Score, scores[0].Score
	for _, s := range scores {
		lo, hi = min(lo, s.Score), max(hi, s.Score)
	}
	for i := range scores {
		if hi == lo {
			scores[i].Score = spec.MaxNodeScore
			continue
		}
		scores[i].Score = spec.MaxNodeScore * (hi - scores[i].Score) / (hi - lo)
	}
	return nil
}

// Random implements spec.ScorePlugin.
type Random struct{ seed int64 }

// NewRandom builds Random (args: seed, default 0).
func NewRandom(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(RandomName, args, ArgSeed); err != nil {
		return nil, err
	}
	r := &Random{}
	if s, ok := args[ArgSeed]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("scheduler plugin %s: %s=%q: want an integer: %w", RandomName, ArgSeed, s, spec.ErrInvalid)
		}
		r.seed = v
	}
	return r, nil
}

// Name implements spec.Named.
func (*Random) Name() string { return RandomName }

// Score hashes the seed, the pod (UID, or namespace/name) and the node
// name. The raw score spans int63, so ties are practically impossible;
// NormalizeScore gives the highest MaxNodeScore and the rest 0.
func (r *Random) Score(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(r.seed) >> (8 * i))
	}
	_, _ = h.Write(b[:])
	id := string(pod.UID)
	if id == "" {
		id = pod.Namespace + "/" + pod.Name
	}
	_, _ = h.Write([]byte(id))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(node.Name()))
	return int64(h.Sum64() >> 1), nil
}

// NormalizeScore gives the highest-hashing node MaxNodeScore, others 0.
func (*Random) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	return winnerTakesAll(scores, func(a, b spec.NodeScore) bool { return a.Score > b.Score || (a.Score == b.Score && a.Name < b.Name) })
}

// FirstFit implements spec.ScorePlugin.
type FirstFit struct{}

// NewFirstFit builds FirstFit; it takes no args.
func NewFirstFit(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(FirstFitName, args); err != nil {
		return nil, err
	}
	return FirstFit{}, nil
}

// Name implements spec.Named.
func (FirstFit) Name() string { return FirstFitName }

// Score is 0; NormalizeScore picks the feasible node first in name order.
func (FirstFit) Score(context.Context, *spec.CycleState, *corev1.Pod, *spec.NodeInfo) (int64, *spec.Status) {
	return 0, nil
}

// NormalizeScore gives the feasible node first in name order
// MaxNodeScore and every other node 0.
func (FirstFit) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	return winnerTakesAll(scores, func(a, b spec.NodeScore) bool { return a.Name < b.Name })
}

// winnerTakesAll sets the best score (by better) to MaxNodeScore and the
// others to 0.
func winnerTakesAll(scores []spec.NodeScore, better func(a, b spec.NodeScore) bool) *spec.Status {
	if len(scores) == 0 {
		return nil
	}
	best := 0
	for i := 1; i < len(scores); i++ {
		if better(scores[i], scores[best]) {
			best = i
		}
	}
	for i := range scores {
		scores[i].Score = 0
	}
	scores[best].Score = spec.MaxNodeScore
	return nil
}
