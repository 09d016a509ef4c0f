package scheduler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/kubelab/kubelab/spec"
)

// Extension point names, as the kube-scheduler labels its metrics.
const (
	epPreFilter  = "PreFilter"
	epFilter     = "Filter"
	epPostFilter = "PostFilter"
	epPreScore   = "PreScore"
	epScore      = "Score"
	epNormalize  = "NormalizeScore"
	epReserve    = "Reserve"
	epUnreserve  = "Unreserve"
	epBind       = "Bind"
)

// scorePlugin is a Score plugin with its weight in the profile.
type scorePlugin struct {
	spec.ScorePlugin
	weight int64
}

// framework is one profile: its plugins, instantiated from the registry,
// per extension point in profile order.
type framework struct {
	sched     *Scheduler
	profile   spec.Profile
	name      string
	queueSort spec.QueueSortPlugin

	preFilter  []spec.PreFilterPlugin
	filter     []spec.FilterPlugin
	postFilter []spec.PostFilterPlugin
	preScore   []spec.PreScorePlugin
	score      []scorePlugin
	reserve    []spec.ReservePlugin
	bind       []spec.BindPlugin
	extenders  []*extender
}

// handle is the spec.SchedulerHandle a profile's plugins get.
type handle struct {
	sched *Scheduler
	fw    *framework
}

func newFramework(s *Scheduler, p spec.Profile, reg *spec.Registry, exts []*extender) (*framework, error) {
	if p.SchedulerName == "" {
		return nil, fmt.Errorf("profile without a schedulerName: %w", spec.ErrInvalid)
	}
	fw := &framework{sched: s, profile: p, name: p.SchedulerName, extenders: exts}
	h := &handle{sched: s, fw: fw}
	seen := map[string]bool{}
	for _, wp := range p.Plugins {
		if seen[wp.Name] {
			return nil, fmt.Errorf("profile %q lists plugin %q twice: %w", p.SchedulerName, wp.Name, spec.ErrInvalid)
		}
		seen[wp.Name] = true
		if reg == nil {
			return nil, fmt.Errorf("profile %q: no plugin registry: %w", p.SchedulerName, spec.ErrInvalid)
		}
		sp, err := reg.Scheduler(wp.Name)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", p.SchedulerName, err)
		}
		pl, err := sp.New(wp.Args, h)
		if err != nil {
			return nil, fmt.Errorf("profile %q: plugin %q: %w", p.SchedulerName, wp.Name, err)
		}
		if pl == nil {
			return nil, fmt.Errorf("profile %q: plugin %q built nothing: %w", p.SchedulerName, wp.Name, spec.ErrInvalid)
		}
		weight := wp.Weight
		if weight == 0 {
			weight = 1
		}
		if weight < 0 {
			return nil, fmt.Errorf("profile %q: plugin %q: negative weight %d: %w", p.SchedulerName, wp.Name, weight, spec.ErrInvalid)
		}
		used := false
		if x, ok := pl.(spec.QueueSortPlugin); ok {
			if fw.queueSort != nil {
				return nil, fmt.Errorf("profile %q: two QueueSort plugins (%s, %s): %w", p.SchedulerName, fw.queueSort.Name(), x.Name(), spec.ErrInvalid)
			}
			fw.queueSort, used = x, true
		}
		if x, ok := pl.(spec.PreFilterPlugin); ok {
			fw.preFilter, used = append(fw.preFilter, x), true
		}
		if x, ok := pl.(spec.FilterPlugin); ok {
			fw.filter, used = append(fw.filter, x), true
		}
		if x, ok := pl.(spec.PostFilterPlugin); ok {
			fw.postFilter, used = append(fw.postFilter, x), true
		}
		if x, ok := pl.(spec.PreScorePlugin); ok {
			fw.preScore, used = append(fw.preScore, x), true
		}
		if x, ok := pl.(spec.ScorePlugin); ok {
			fw.score, used = append(fw.score, scorePlugin{x, weight}), true
		}
		if x, ok := pl.(spec.ReservePlugin); ok {
			fw.reserve, used = append(fw.reserve, x), true
		}
		if x, ok := pl.(spec.BindPlugin); ok {
			fw.bind, used = append(fw.bind, x), true
		}
		if !used {
			return nil, fmt.Errorf("profile %q: plugin %q implements no extension point: %w", p.SchedulerName, wp.Name, spec.ErrInvalid)
		}
	}
	if p.PercentageOfNodesToScore < 0 || p.PercentageOfNodesToScore > 100 {
		return nil, fmt.Errorf("profile %q: percentageOfNodesToScore %d is not in 0..100: %w", p.SchedulerName, p.PercentageOfNodesToScore, spec.ErrInvalid)
	}
	return fw, nil
}

// panicStatus turns a recovered panic into an Error status.
func panicStatus(plugin, point string, r any) *spec.Status {
	err := fmt.Errorf("plugin %q panicked at %s: %v", plugin, point, r)
	return &spec.Status{Code: spec.Error, Reasons: []string{err.Error()}, Plugin: plugin, Err: &pluginPanic{err: err, stack: string(debug.Stack())}}
}

// pluginPanic is the error of a panicking plugin.
type pluginPanic struct {
	err   error
	stack string
}

func (p *pluginPanic) Error() string { return p.err.Error() }

// isPanic reports whether err comes from a panicking plugin.
func isPanic(err error) bool {
	var p *pluginPanic
	return errors.As(err, &p)
}

// finish fills in the plugin name of a non-nil status.
func finish(s *spec.Status, plugin string) *spec.Status {
	if s != nil && s.Plugin == "" {
		s.Plugin = plugin
	}
	if s != nil && s.Code == spec.Error && s.Err == nil {
		s.Err = errors.New(s.Message())
	}
	return s
}

// observe records a plugin's duration when the cycle is sampled.
func (fw *framework) observe(sample bool, plugin, point string, start time.Time, s *spec.Status) {
	if !sample {
		return
	}
	code := spec.Success
	if s != nil {
		code = s.Code
	}
	fw.sched.metrics.pluginObserver(plugin, point, code).Observe(since(start))
}

func (fw *framework) runPreFilter(ctx context.Context, sample bool, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, p spec.PreFilterPlugin) (s *spec.Status) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), epPreFilter, r)
		}
		fw.observe(sample, p.Name(), epPreFilter, start, s)
	}()
	return finish(p.PreFilter(ctx, state, pod, snap), p.Name())
}

func (fw *framework) runFilter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, n *spec.NodeInfo, p spec.FilterPlugin) (s *spec.Status) {
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), epFilter, r)
		}
	}()
	return finish(p.Filter(ctx, state, pod, n), p.Name())
}

// filterNode runs every Filter plugin not skipped at PreFilter on one node
// and returns the first rejection (or error).
func (fw *framework) filterNode(ctx context.Context, sample bool, state *spec.CycleState, skip map[string]bool, pod *corev1.Pod, n *spec.NodeInfo) *spec.Status {
	for _, p := range fw.filter {
		if skip[p.Name()] {
			continue
		}
		var start time.Time
		if sample {
			start = time.Now()
		}
		s := fw.runFilter(ctx, state, pod, n, p)
		fw.observe(sample, p.Name(), epFilter, start, s)
		if !s.IsSuccess() && !s.IsSkip() {
			return s
		}
	}
	return nil
}

func (fw *framework) runPostFilter(ctx context.Context, sample bool, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, filtered map[string]*spec.Status, p spec.PostFilterPlugin) (node string, s *spec.Status) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			node, s = "", panicStatus(p.Name(), epPostFilter, r)
		}
		fw.observe(sample, p.Name(), epPostFilter, start, s)
	}()
	node, s = p.PostFilter(ctx, state, pod, snap, filtered)
	return node, finish(s, p.Name())
}

func (fw *framework) runPreScore(ctx context.Context, sample bool, state *spec.CycleState, pod *corev1.Pod, nodes []*spec.NodeInfo, p spec.PreScorePlugin) (s *spec.Status) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), epPreScore, r)
		}
		fw.observe(sample, p.Name(), epPreScore, start, s)
	}()
	return finish(p.PreScore(ctx, state, pod, nodes), p.Name())
}

func (fw *framework) runScore(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, n *spec.NodeInfo, p spec.ScorePlugin) (score int64, s *spec.Status) {
	defer func() {
		if r := recover(); r != nil {
			score, s = 0, panicStatus(p.Name(), epScore, r)
		}
	}()
	score, s = p.Score(ctx, state, pod, n)
	return score, finish(s, p.Name())
}

func (fw *framework) runNormalize(ctx context.Context, sample bool, state *spec.CycleState, pod *corev1.Pod, scores []spec.NodeScore, p spec.ScorePlugin) (s *spec.Status) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), epNormalize, r)
		}
		fw.observe(sample, p.Name(), epNormalize, start, s)
	}()
	return finish(p.NormalizeScore(ctx, state, pod, scores), p.Name())
}

func (fw *framework) runReserve(ctx context.Context, sample bool, state *spec.CycleState, pod *corev1.Pod, node string, p spec.ReservePlugin) (s *spec.Status) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), epReserve, r)
		}
		fw.observe(sample, p.Name(), epReserve, start, s)
	}()
	return finish(p.Reserve(ctx, state, pod, node), p.Name())
}

// unreserve calls Unreserve of every Reserve plugin in reverse order; a
// panic is logged and ignored.
func (fw *framework) unreserve(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node string) {
	for i := len(fw.reserve) - 1; i >= 0; i-- {
		p := fw.reserve[i]
		func() {
			defer func() {
				if r := recover(); r != nil {
					fw.sched.log.Error("plugin panicked in Unreserve", "plugin", p.Name(), "pod", pod.Namespace+"/"+pod.Name, "panic", fmt.Sprint(r))
				}
			}()
			p.Unreserve(ctx, state, pod, node)
		}()
	}
}

func (fw *framework) runBind(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node string, p spec.BindPlugin) (s *spec.Status) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), epBind, r)
		}
		fw.observe(true, p.Name(), epBind, start, s)
	}()
	return finish(p.Bind(ctx, state, pod, node), p.Name())
}

// Snapshot returns the snapshot of the cycle in progress.
func (h *handle) Snapshot() spec.Snapshot { return h.sched.snap }

// PodDisruptionBudgets lists the PDBs from the informer.
func (h *handle) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget { return h.sched.listPDBs() }

// Bind binds through pods/binding.
func (h *handle) Bind(ctx context.Context, pod *corev1.Pod, nodeName string) error {
	return h.sched.bindThroughAPI(ctx, pod, nodeName)
}

// Preempt marks and deletes the victims and nominates nodeName.
func (h *handle) Preempt(ctx context.Context, preemptor *corev1.Pod, nodeName string, victims []*corev1.Pod) error {
	return h.sched.preempt(ctx, h.fw, preemptor, nodeName, victims)
}

// RunFilterPlugins runs PreFilter and Filter for one node of snap.
func (h *handle) RunFilterPlugins(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot, nodeName string) *spec.Status {
	n, err := snap.Get(nodeName)
	if err != nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, fmt.Sprintf("node %q not found", nodeName))
	}
	state := &spec.CycleState{}
	skip := map[string]bool{}
	for _, p := range h.fw.preFilter {
		s := h.fw.runPreFilter(ctx, false, state, pod, snap, p)
		switch {
		case s.IsSkip():
			skip[p.Name()] = true
		case !s.IsSuccess():
			return s
		}
	}
	return h.fw.filterNode(ctx, false, state, skip, pod, n)
}
