package framework

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/spec"
)

// Extension point names, as the kube-scheduler labels its metrics.
const (
	PreFilter      = "PreFilter"
	Filter         = "Filter"
	PostFilter     = "PostFilter"
	PreScore       = "PreScore"
	Score          = "Score"
	NormalizeScore = "NormalizeScore"
	Reserve        = "Reserve"
	Unreserve      = "Unreserve"
	Bind           = "Bind"
)

// ScorePlugin is a Score plugin with its weight in the profile.
type ScorePlugin struct {
	spec.ScorePlugin
	// Weight multiplies the plugin's normalized scores (at least 1).
	Weight int64
}

// Framework is one profile's plugins, grouped by extension point in profile
// order. Build it with New; it is read-only afterwards and safe for
// concurrent use by several cycles (the plugins' own concurrency rules are
// spec's).
type Framework struct {
	// Profile is the profile the plugins were built from.
	Profile spec.Profile

	QueueSort  spec.QueueSortPlugin
	PreFilter  []spec.PreFilterPlugin
	Filter     []spec.FilterPlugin
	PostFilter []spec.PostFilterPlugin
	PreScore   []spec.PreScorePlugin
	Score      []ScorePlugin
	Reserve    []spec.ReservePlugin
	Bind       []spec.BindPlugin
}

// Builder builds one plugin of a profile; New calls it once per
// spec.WeightedPlugin in profile order.
type Builder func(wp spec.WeightedPlugin) (spec.Named, error)

// FromRegistry returns a Builder that builds plugins from reg's scheduler
// plugins with handle h.
func FromRegistry(reg *spec.Registry, h spec.SchedulerHandle) Builder {
	return func(wp spec.WeightedPlugin) (spec.Named, error) {
		if reg == nil {
			return nil, fmt.Errorf("no plugin registry: %w", spec.ErrInvalid)
		}
		sp, err := reg.Scheduler(wp.Name)
		if err != nil {
			return nil, err
		}
		return sp.New(wp.Args, h)
	}
}

// New builds every plugin of profile p with build and sorts them by the
// extension points they implement. It fails, with an error wrapping
// spec.ErrInvalid, on a profile without a scheduler name, a plugin listed
// twice, a negative weight, a plugin that implements no extension point,
// two QueueSort plugins, or a percentageOfNodesToScore outside 0..100. A
// weight of 0 means 1.
func New(p spec.Profile, build Builder) (*Framework, error) {
	if p.SchedulerName == "" {
		return nil, fmt.Errorf("profile without a schedulerName: %w", spec.ErrInvalid)
	}
	if p.PercentageOfNodesToScore < 0 || p.PercentageOfNodesToScore > 100 {
		return nil, fmt.Errorf("profile %q: percentageOfNodesToScore %d is not in 0..100: %w", p.SchedulerName, p.PercentageOfNodesToScore, spec.ErrInvalid)
	}
	fw := &Framework{Profile: p}
	seen := map[string]bool{}
	for _, wp := range p.Plugins {
		if seen[wp.Name] {
			return nil, fmt.Errorf("profile %q lists plugin %q twice: %w", p.SchedulerName, wp.Name, spec.ErrInvalid)
		}
		seen[wp.Name] = true
		weight := wp.Weight
		if weight == 0 {
			weight = 1
		}
		if weight < 0 {
			return nil, fmt.Errorf("profile %q: plugin %q: negative weight %d: %w", p.SchedulerName, wp.Name, weight, spec.ErrInvalid)
		}
		pl, err := build(wp)
		if err != nil {
			return nil, fmt.Errorf("profile %q: plugin %q: %w", p.SchedulerName, wp.Name, err)
		}
		if pl == nil {
			return nil, fmt.Errorf("profile %q: plugin %q built nothing: %w", p.SchedulerName, wp.Name, spec.ErrInvalid)
		}
		if err := fw.add(pl, weight); err != nil {
			return nil, fmt.Errorf("profile %q: %w", p.SchedulerName, err)
		}
	}
	return fw, nil
}

// add files pl under every extension point it implements.
func (fw *Framework) add(pl spec.Named, weight int64) error {
	used := false
	if x, ok := pl.(spec.QueueSortPlugin); ok {
		if fw.QueueSort != nil {
			return fmt.Errorf("two QueueSort plugins (%s, %s): %w", fw.QueueSort.Name(), x.Name(), spec.ErrInvalid)
		}
		fw.QueueSort, used = x, true
	}
	if x, ok := pl.(spec.PreFilterPlugin); ok {
		fw.PreFilter, used = append(fw.PreFilter, x), true
	}
	if x, ok := pl.(spec.FilterPlugin); ok {
		fw.Filter, used = append(fw.Filter, x), true
	}
	if x, ok := pl.(spec.PostFilterPlugin); ok {
		fw.PostFilter, used = append(fw.PostFilter, x), true
	}
	if x, ok := pl.(spec.PreScorePlugin); ok {
		fw.PreScore, used = append(fw.PreScore, x), true
	}
	if x, ok := pl.(spec.ScorePlugin); ok {
		fw.Score, used = append(fw.Score, ScorePlugin{x, weight}), true
	}
	if x, ok := pl.(spec.ReservePlugin); ok {
		fw.Reserve, used = append(fw.Reserve, x), true
	}
	if x, ok := pl.(spec.BindPlugin); ok {
		fw.Bind, used = append(fw.Bind, x), true
	}
	if !used {
		return fmt.Errorf("plugin %q implements no extension point: %w", pl.Name(), spec.ErrInvalid)
	}
	return nil
}

// Name is the profile's scheduler name.
func (fw *Framework) Name() string { return fw.Profile.SchedulerName }

// Observer is told how long extension points and plugins took, for
// metrics. Its methods may be called concurrently (Filter and Score run in
// parallel over nodes).
type Observer interface {
	// ExtensionPoint reports one run of all plugins at point; status is
	// "Success", "Error" or a spec.Code name.
	ExtensionPoint(point, status string, d time.Duration)
	// Plugin reports one plugin call.
	Plugin(plugin, point string, code spec.Code, d time.Duration)
}

// PanicError is the error of a Status from a plugin that panicked.
type PanicError struct {
	// Plugin and Point say where.
	Plugin, Point string
	// Value is what the plugin panicked with; Stack is the goroutine's
	// stack at the panic.
	Value any
	Stack string
}

// Error names the plugin, the extension point and the panic value.
func (p *PanicError) Error() string {
	return fmt.Sprintf("plugin %q panicked at %s: %v", p.Plugin, p.Point, p.Value)
}

// panicStatus turns a recovered panic into an Error status.
func panicStatus(plugin, point string, r any) *spec.Status {
	err := &PanicError{Plugin: plugin, Point: point, Value: r, Stack: string(debug.Stack())}
	return &spec.Status{Code: spec.Error, Reasons: []string{err.Error()}, Plugin: plugin, Err: err}
}

// finish fills in the plugin name of a non-nil status, and an Err for an
// Error status that has none.
func finish(s *spec.Status, plugin string) *spec.Status {
	if s != nil && s.Plugin == "" {
		s.Plugin = plugin
	}
	if s != nil && s.Code == spec.Error && s.Err == nil {
		s.Err = errors.New(s.Message())
	}
	return s
}

// StatusErr is st's error: Err, or its message as an error.
func StatusErr(st *spec.Status) error {
	if st == nil {
		return nil
	}
	if st.Err != nil {
		return st.Err
	}
	return errors.New(st.Message())
}

// clock times one plugin call when an Observer wants plugin durations.
type clock struct {
	obs Observer
}

func (c clock) start() time.Time {
	if c.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

func (c clock) done(plugin, point string, t0 time.Time, s *spec.Status) {
	if c.obs == nil {
		return
	}
	code := spec.Success
	if s != nil {
		code = s.Code
	}
	c.obs.Plugin(plugin, point, code, time.Since(t0))
}

func runPreFilter(ctx context.Context, ck clock, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, p spec.PreFilterPlugin) (s *spec.Status) {
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), PreFilter, r)
		}
		ck.done(p.Name(), PreFilter, t0, s)
	}()
	return finish(p.PreFilter(ctx, state, pod, snap), p.Name())
}

func runFilter(ctx context.Context, ck clock, state *spec.CycleState, pod *corev1.Pod, n *spec.NodeInfo, p spec.FilterPlugin) (s *spec.Status) {
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), Filter, r)
		}
		ck.done(p.Name(), Filter, t0, s)
	}()
	return finish(p.Filter(ctx, state, pod, n), p.Name())
}

func runPreScore(ctx context.Context, ck clock, state *spec.CycleState, pod *corev1.Pod, nodes []*spec.NodeInfo, p spec.PreScorePlugin) (s *spec.Status) {
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), PreScore, r)
		}
		ck.done(p.Name(), PreScore, t0, s)
	}()
	return finish(p.PreScore(ctx, state, pod, nodes), p.Name())
}

func runScore(ctx context.Context, ck clock, state *spec.CycleState, pod *corev1.Pod, n *spec.NodeInfo, p spec.ScorePlugin) (score int64, s *spec.Status) {
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			score, s = 0, panicStatus(p.Name(), Score, r)
		}
		ck.done(p.Name(), Score, t0, s)
	}()
	score, s = p.Score(ctx, state, pod, n)
	return score, finish(s, p.Name())
}

func runNormalize(ctx context.Context, ck clock, state *spec.CycleState, pod *corev1.Pod, scores []spec.NodeScore, p spec.ScorePlugin) (s *spec.Status) {
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), NormalizeScore, r)
		}
		ck.done(p.Name(), NormalizeScore, t0, s)
	}()
	return finish(p.NormalizeScore(ctx, state, pod, scores), p.Name())
}

// filterNode runs every Filter plugin not in skip on one node and returns
// the first status that is neither Success nor Skip (nil: the node fits).
func (fw *Framework) filterNode(ctx context.Context, ck clock, state *spec.CycleState, skip map[string]bool, pod *corev1.Pod, n *spec.NodeInfo) *spec.Status {
	for _, p := range fw.Filter {
		if skip[p.Name()] {
			continue
		}
		if s := runFilter(ctx, ck, state, pod, n, p); !s.IsSuccess() && !s.IsSkip() {
			return s
		}
	}
	return nil
}

// RunFilterPlugins runs the PreFilter plugins (a Skip skips that plugin's
// Filter; the first other non-Success status is returned) and then the
// Filter plugins for pod on node nodeName of snap, with a fresh CycleState.
// It returns the first rejection or error, nil when the node fits, and an
// UnschedulableAndUnresolvable status when snap has no such node. It is
// what spec.SchedulerHandle.RunFilterPlugins does.
func (fw *Framework) RunFilterPlugins(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot, nodeName string) *spec.Status {
	n, err := snap.Get(nodeName)
	if err != nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, fmt.Sprintf("node %q not found", nodeName))
	}
	state := &spec.CycleState{}
	skip := map[string]bool{}
	for _, p := range fw.PreFilter {
		s := runPreFilter(ctx, clock{}, state, pod, snap, p)
		switch {
		case s.IsSkip():
			skip[p.Name()] = true
		case !s.IsSuccess():
			return s
		}
	}
	return fw.filterNode(ctx, clock{}, state, skip, pod, n)
}

// RunPostFilter runs one PostFilter plugin under the same guard as the
// cycle's plugins; obs may be nil.
func (fw *Framework) RunPostFilter(ctx context.Context, obs Observer, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, filtered map[string]*spec.Status, p spec.PostFilterPlugin) (node string, s *spec.Status) {
	ck := clock{obs}
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			node, s = "", panicStatus(p.Name(), PostFilter, r)
		}
		ck.done(p.Name(), PostFilter, t0, s)
	}()
	node, s = p.PostFilter(ctx, state, pod, snap, filtered)
	return node, finish(s, p.Name())
}

// RunReserve runs one Reserve plugin's Reserve under the guard; obs may be
// nil.
func (fw *Framework) RunReserve(ctx context.Context, obs Observer, state *spec.CycleState, pod *corev1.Pod, node string, p spec.ReservePlugin) (s *spec.Status) {
	ck := clock{obs}
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), Reserve, r)
		}
		ck.done(p.Name(), Reserve, t0, s)
	}()
	return finish(p.Reserve(ctx, state, pod, node), p.Name())
}

// RunUnreserve calls Unreserve of the first n Reserve plugins in reverse
// order (n < 0: all of them). A panicking Unreserve is passed to onPanic
// (which may be nil) and the others still run.
func (fw *Framework) RunUnreserve(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node string, n int, onPanic func(plugin string, r any)) {
	if n < 0 || n > len(fw.Reserve) {
		n = len(fw.Reserve)
	}
	for i := n - 1; i >= 0; i-- {
		p := fw.Reserve[i]
		func() {
			defer func() {
				if r := recover(); r != nil && onPanic != nil {
					onPanic(p.Name(), r)
				}
			}()
			p.Unreserve(ctx, state, pod, node)
		}()
	}
}

// RunBind runs one Bind plugin under the guard; obs may be nil.
func (fw *Framework) RunBind(ctx context.Context, obs Observer, state *spec.CycleState, pod *corev1.Pod, node string, p spec.BindPlugin) (s *spec.Status) {
	ck := clock{obs}
	t0 := ck.start()
	defer func() {
		if r := recover(); r != nil {
			s = panicStatus(p.Name(), Bind, r)
		}
		ck.done(p.Name(), Bind, t0, s)
	}()
	return finish(p.Bind(ctx, state, pod, node), p.Name())
}
