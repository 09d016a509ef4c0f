// Package schedtest is the scheduler plugins' test kit: a fake
// spec.SchedulerHandle, helpers that run one plugin at one extension point
// through spec/framework (the scheduling cycle production runs), and a
// Framework that runs whole profiles. Test objects (pods, nodes,
// snapshots) come from spec/spectest.
package schedtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
)

// Preemption is one call to Handle.Preempt.
type Preemption struct {
	Preemptor string
	Node      string
	Victims   []string
}

// Handle is a fake spec.SchedulerHandle: it serves a snapshot and PDBs,
// records preemptions and bindings, and runs the given filter plugins.
type Handle struct {
	Snap    spec.Snapshot
	PDBs    []*policyv1.PodDisruptionBudget
	Filters []spec.Named

	mu          sync.Mutex
	Preemptions []Preemption
	Bindings    map[string]string
	BindErr     error
}

// Snapshot implements spec.SchedulerHandle.
func (h *Handle) Snapshot() spec.Snapshot { return h.Snap }

// PodDisruptionBudgets implements spec.SchedulerHandle.
func (h *Handle) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget { return h.PDBs }

// Preempt implements spec.SchedulerHandle by recording the call.
func (h *Handle) Preempt(_ context.Context, preemptor *corev1.Pod, nodeName string, victims []*corev1.Pod) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	pr := Preemption{Preemptor: preemptor.Name, Node: nodeName}
	for _, v := range victims {
		pr.Victims = append(pr.Victims, v.Name)
	}
	h.Preemptions = append(h.Preemptions, pr)
	return nil
}

// Bind implements spec.SchedulerHandle by recording the binding.
func (h *Handle) Bind(_ context.Context, pod *corev1.Pod, nodeName string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.BindErr != nil {
		return h.BindErr
	}
	if h.Bindings == nil {
		h.Bindings = map[string]string{}
	}
	h.Bindings[pod.Name] = nodeName
	return nil
}

// RunFilterPlugins implements spec.SchedulerHandle: the PreFilter and
// Filter plugins among Filters run by spec/framework's rules.
func (h *Handle) RunFilterPlugins(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot, nodeName string) *spec.Status {
	fw := &framework.Framework{}
	for _, pl := range h.Filters {
		if pf, ok := pl.(spec.PreFilterPlugin); ok {
			fw.PreFilter = append(fw.PreFilter, pf)
		}
		if f, ok := pl.(spec.FilterPlugin); ok {
			fw.Filter = append(fw.Filter, f)
		}
	}
	return fw.RunFilterPlugins(ctx, pod, snap, nodeName)
}

// RunFilter runs pl's PreFilter (if any) and Filter for pod on node of
// snap, with a fresh CycleState, as spec/framework runs them. It fails the
// test at once when pl is not a spec.FilterPlugin.
func RunFilter(t testing.TB, pl spec.Named, pod *corev1.Pod, snap spec.Snapshot, node string) *spec.Status {
	t.Helper()
	if _, ok := pl.(spec.FilterPlugin); !ok {
		t.Fatalf("plugin %q does not implement spec.FilterPlugin", pl.Name())
	}
	h := &Handle{Filters: []spec.Named{pl}}
	return h.RunFilterPlugins(context.Background(), pod, snap, node)
}

// RunScore runs pl on every node of snap as spec/framework's cycle scores
// (PreFilter and PreScore when pl has them, Score, NormalizeScore; Filter
// is not run, so every node is scored) and returns the normalized scores
// by node name, or nil when PreScore returned Skip. It fails the test at
// once when pl is not a spec.ScorePlugin, or when the cycle fails (an
// Error status, a PreFilter rejection, a score out of range).
func RunScore(t testing.TB, pl spec.Named, pod *corev1.Pod, snap spec.Snapshot) map[string]int64 {
	t.Helper()
	sp, ok := pl.(spec.ScorePlugin)
	if !ok {
		t.Fatalf("plugin %q does not implement spec.ScorePlugin", pl.Name())
	}
	fw := &framework.Framework{Profile: spec.Profile{SchedulerName: "schedtest"}, Score: []framework.ScorePlugin{{ScorePlugin: sp, Weight: 1}}}
	if pf, ok := pl.(spec.PreFilterPlugin); ok {
		fw.PreFilter = []spec.PreFilterPlugin{pf}
	}
	if ps, ok := pl.(spec.PreScorePlugin); ok {
		fw.PreScore = []spec.PreScorePlugin{ps}
	}
	res, err := framework.Schedule(context.Background(), fw, snap, pod, framework.Inputs{
		PercentageOfNodesToScore: 100, AlwaysScore: true, Rand: NewRand()})
	if err != nil {
		t.Fatalf("scoring with plugin %q: %v", pl.Name(), err)
	}
	ps := res.Scores[0]
	if ps.Skipped {
		return nil
	}
	out := make(map[string]int64, len(res.Feasible))
	for i, n := range res.Feasible {
		out[n.Name()] = ps.Normalized[i]
	}
	return out
}

// NewRand returns a random source with a fixed seed, so that the ties a
// test's cycle breaks are broken the same way in every run.
func NewRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// AssertStatus fails t unless got and want have the same code and reasons.
func AssertStatus(t testing.TB, got, want *spec.Status) {
	t.Helper()
	if got.IsSuccess() && want.IsSuccess() {
		return
	}
	gc, wc := spec.Success, spec.Success
	if got != nil {
		gc = got.Code
	}
	if want != nil {
		wc = want.Code
	}
	if gc != wc || got.Message() != want.Message() {
		t.Errorf("status = %v %q, want %v %q", gc, got.Message(), wc, want.Message())
	}
}

// Framework runs whole profiles in tests and benchmarks: spec/framework's
// Framework built from a list of registry entries, with the plugins kept
// in profile order.
type Framework struct {
	*framework.Framework
	// Plugins are the built plugins in profile order.
	Plugins []spec.Named
	// Handle is the plugins' handle.
	Handle *Handle
	// Inputs are passed to every Schedule (Rand and State excepted);
	// NewFramework sets PercentageOfNodesToScore to 100, so that every node
	// is evaluated.
	Inputs framework.Inputs

	rand *rand.Rand
}

// NewFramework builds every plugin of profile from the given registry
// entries, with h as their handle (h.Filters is set to the built plugins).
func NewFramework(profile spec.Profile, registry []spec.SchedulerPlugin, h *Handle) (*Framework, error) {
	reg := spec.NewRegistry()
	for _, p := range registry {
		if err := reg.RegisterScheduler(p); err != nil {
			return nil, err
		}
	}
	out := &Framework{Handle: h, Inputs: framework.Inputs{PercentageOfNodesToScore: 100}, rand: NewRand()}
	build := framework.FromRegistry(reg, h)
	fw, err := framework.New(profile, func(wp spec.WeightedPlugin) (spec.Named, error) {
		pl, err := build(wp)
		if err == nil && pl != nil {
			out.Plugins = append(out.Plugins, pl)
		}
		return pl, err
	})
	if err != nil {
		return nil, err
	}
	out.Framework = fw
	h.Filters = out.Plugins
	return out, nil
}

// Schedule runs spec/framework.Schedule for pod over snap (after pointing
// the handle at snap), with the Framework's Inputs and a random source
// seeded once per Framework. A pod that fits nowhere gives a
// *framework.FitError. It runs no PostFilter and binds nothing.
func (fw *Framework) Schedule(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot) (*framework.Result, error) {
	fw.Handle.Snap = snap
	in := fw.Inputs
	in.State, in.Rand = nil, fw.rand
	return framework.Schedule(ctx, fw.Framework, snap, pod, in)
}

// FitError returns err as a *framework.FitError, or nil when it is not one.
func FitError(err error) *framework.FitError {
	var fe *framework.FitError
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}
