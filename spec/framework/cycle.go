package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/kubelab/kubelab/spec"
)

// Bounds of the adaptive percentageOfNodesToScore, as in the kube-scheduler.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// NumFeasibleNodesToFind is how many feasible nodes a cycle looks for among
// numAll: all of them below 100 nodes; otherwise percentage% of them
// (0 means the adaptive default 50 - numAll/125, at least 5%), and at
// least 100.
func NumFeasibleNodesToFind(percentage int32, numAll int) int {
	if numAll < minFeasibleNodesToFind {
		return numAll
	}
	p := int(percentage)
	if p == 0 {
		p = 50 - numAll/125
		if p < minFeasibleNodesPercentageToFind {
			p = minFeasibleNodesPercentageToFind
		}
	}
	if p >= 100 {
		return numAll
	}
	n := numAll * p / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}

// Extender is a filter and prioritizer that runs after the profile's
// plugins, such as an HTTP scheduler extender. It is a hook of the cycle,
// not a wrapper around it, because upstream interleaves extenders with the
// plugins: they filter the nodes the Filter plugins kept (before PostFilter
// would run) and their scores join the plugins' totals before the node is
// chosen. An Extender may do I/O; the cycle is a pure function of its
// inputs only when it is given none. Which pods an extender is interested
// in, and whether its failure is ignored, are the Extender's business: an
// extender with nothing to say returns its input unchanged.
type Extender interface {
	// Name names the extender in statuses and scores (e.g. "extender
	// http://…").
	Name() string
	// Filter returns the nodes of nodes that fit pod and a rejecting
	// status for each node it removed (Plugin set to Name). An error
	// fails the cycle.
	Filter(ctx context.Context, pod *corev1.Pod, nodes []*spec.NodeInfo) (fit []*spec.NodeInfo, rejected map[string]*spec.Status, err error)
	// Prioritize returns pod's scores of nodes by node name, already on the
	// plugins' 0..spec.MaxNodeScore scale, and the weight they are
	// multiplied by; nil scores mean no opinion. Names of nodes not in
	// nodes are ignored. An error fails the cycle.
	Prioritize(ctx context.Context, pod *corev1.Pod, nodes []*spec.NodeInfo) (scores map[string]int64, weight int64, err error)
}

// Inputs are everything a cycle depends on besides the framework, the
// snapshot and the pod.
type Inputs struct {
	// State carries data between the pod's extension points; nil means a
	// fresh one. The caller keeps it for Reserve, PostFilter and Bind.
	State *spec.CycleState
	// StartIndex is where the round-robin search for feasible nodes starts
	// (taken modulo the number of nodes); pass the previous Result's
	// NextStartIndex so that every node gets its turn.
	StartIndex int
	// PercentageOfNodesToScore bounds how many feasible nodes are looked
	// for (see NumFeasibleNodesToFind); 0 uses the profile's, and the
	// adaptive default when the profile sets none either.
	PercentageOfNodesToScore int32
	// Rand breaks ties between nodes with the highest total, uniformly
	// (reservoir sampling over the feasible nodes in search order, as the
	// kube-scheduler does). Required; seed it for a reproducible decision.
	// It is used by the calling goroutine only.
	Rand *rand.Rand
	// Nominated are the pods that earlier preemptions nominated to each
	// node. Where pods of at least the pod's priority are nominated, the
	// pod must fit both with them (their room is kept) and without them
	// (they may not come), as upstream.
	Nominated map[string][]*corev1.Pod
	// Extenders filter and prioritize after the plugins, in order.
	Extenders []Extender
	// AlwaysScore scores even when a single node is feasible (scoring is
	// skipped then otherwise, as upstream); explanations want the scores.
	AlwaysScore bool
	// Parallelism is how many goroutines run Filter and Score over nodes
	// (at most 1: the calling goroutine). The Result does not depend on it.
	Parallelism int
	// Observer, when set, is told the extension points' durations, and
	// with TimePlugins every plugin call's (upstream samples one cycle in
	// ten for the latter).
	Observer    Observer
	TimePlugins bool
	// Scratch, when set, holds buffers reused across cycles (owned by the
	// caller, used by one cycle at a time).
	Scratch *Scratch
}

// Scratch are buffers a caller may keep between cycles to spare
// allocations; the zero value is ready.
type Scratch struct {
	verdicts []verdict
}

// verdict is one node's Filter outcome, by search position.
type verdict struct {
	done bool
	st   *spec.Status
}

// PluginScores are one Score plugin's (or extender's) scores of the
// feasible nodes; each slice is parallel to Result.Feasible.
type PluginScores struct {
	// Plugin names the plugin (or the extender).
	Plugin string
	// Weight multiplies Normalized.
	Weight int64
	// Skipped: PreScore returned Skip, so the plugin did not score.
	Skipped bool
	// Raw are Score's values, before NormalizeScore (for an extender,
	// its replies before scaling; 0 for a node it did not score).
	Raw []int64
	// Normalized are the scores after NormalizeScore, in 0..MaxNodeScore.
	Normalized []int64
}

// Weighted is the i-th feasible node's weighted score.
func (p *PluginScores) Weighted(i int) int64 {
	if p.Skipped {
		return 0
	}
	return p.Normalized[i] * p.Weight
}

// Result is a cycle's decision and why it was taken. Slices parallel to
// Feasible are nil when no scoring happened.
type Result struct {
	// Node is the chosen node ("" when none fits or on error).
	Node string
	// NumAllNodes is the number of nodes in the snapshot.
	NumAllNodes int
	// Evaluated counts the nodes looked at (the feasible and the
	// rejected ones).
	Evaluated int
	// Feasible are the nodes that passed Filter and the extenders, in
	// search order.
	Feasible []*spec.NodeInfo
	// Rejected holds the status of every evaluated node that did not pass
	// (Filter plugins or extenders), by node name. A PreFilter rejection
	// evaluates no node: see FitError.
	Rejected map[string]*spec.Status
	// Scores are the Score plugins' scores in profile order, then the
	// extenders'.
	Scores []PluginScores
	// Totals are the feasible nodes' weighted sums.
	Totals []int64
	// NextStartIndex is where the next cycle's search should start.
	NextStartIndex int
	// FromNomination: the pod's nominated node was tried first and fits.
	FromNomination bool
}

// FitError says why no node fits a pod; its message reads like the
// kube-scheduler's FitError.
type FitError struct {
	// NumAllNodes is the number of nodes in the snapshot; 0 gives "no
	// nodes available to schedule pods".
	NumAllNodes int
	// PreFilterMessage is a rejecting PreFilter status's message.
	PreFilterMessage string
	// Statuses are the rejections by node name (every node, with the
	// PreFilter status, after a PreFilter rejection); PostFilter plugins
	// get them.
	Statuses map[string]*spec.Status
	// PostFilterMessage is appended to the message (the caller sets it
	// after running PostFilter).
	PostFilterMessage string
}

// errNoNodesAvailable is the kube-scheduler's message for an empty cluster.
const errNoNodesAvailable = "no nodes available to schedule pods"

// reasons returns a status's reasons, or one naming its plugin when it
// gave none.
func reasons(s *spec.Status) []string {
	if s == nil {
		return nil
	}
	if len(s.Reasons) > 0 {
		return s.Reasons
	}
	return []string{fmt.Sprintf("node(s) were rejected by plugin %s", s.Plugin)}
}

// Error is "0/N nodes are available: <count> <reason>, …." with the
// counted reasons sorted as strings, then the PostFilter message.
func (f *FitError) Error() string {
	if f.NumAllNodes == 0 {
		return errNoNodesAvailable
	}
	msg := fmt.Sprintf("0/%d nodes are available:", f.NumAllNodes)
	if f.PreFilterMessage != "" {
		msg += " " + f.PreFilterMessage + "."
	} else {
		counts := map[string]int{}
		for _, s := range f.Statuses {
			for _, r := range reasons(s) {
				counts[r]++
			}
		}
		hist := make([]string, 0, len(counts))
		for r, n := range counts {
			hist = append(hist, fmt.Sprintf("%d %s", n, r))
		}
		sort.Strings(hist)
		if len(hist) > 0 {
			msg += " " + strings.Join(hist, ", ") + "."
		}
	}
	if f.PostFilterMessage != "" {
		msg += " " + f.PostFilterMessage
	}
	return msg
}

// cycle is one Schedule call's working state.
type cycle struct {
	fw      *Framework
	in      *Inputs
	ck      clock
	state   *spec.CycleState
	pod     *corev1.Pod
	snap    spec.Snapshot
	skipped map[string]bool // plugins that returned Skip at PreFilter
}

// Schedule runs one scheduling cycle for pod on snap: PreFilter; the pod's
// nominated node first, if it fits; else Filter over the nodes from
// in.StartIndex (in parallel, stopping once NumFeasibleNodesToFind
// feasible nodes are found); the extenders' filters; PreScore (every
// PreScore plugin of the profile; Skip skips that plugin's Score), Score,
// NormalizeScore, weights and the extenders' priorities; the highest total
// wins, ties broken by in.Rand.
//
// It returns a Result, and a *FitError when no node fits (the Result then
// holds the evaluated nodes' rejections), or another error — a plugin's
// Error status, a panic, a score out of range, an extender's error, ctx's
// end — with a Result that may be partial. It runs no PostFilter, Reserve
// or Bind, and changes neither snap nor pod.
func Schedule(ctx context.Context, fw *Framework, snap spec.Snapshot, pod *corev1.Pod, in Inputs) (*Result, error) {
	if in.Rand == nil {
		return nil, fmt.Errorf("framework.Schedule: Inputs.Rand is nil: %w", spec.ErrInvalid)
	}
	nodes := snap.Nodes()
	res := &Result{NumAllNodes: len(nodes), Rejected: map[string]*spec.Status{}}
	if len(nodes) == 0 {
		return res, &FitError{}
	}
	c := &cycle{fw: fw, in: &in, state: in.State, pod: pod, snap: snap, skipped: map[string]bool{}}
	if c.state == nil {
		c.state = &spec.CycleState{}
	}
	if in.TimePlugins {
		c.ck = clock{in.Observer}
	}
	res.NextStartIndex = in.StartIndex

	t0 := c.now()
	if st := c.preFilter(ctx); st != nil {
		if st.Code == spec.Error {
			c.observe(PreFilter, "Error", t0)
			return res, fmt.Errorf("running PreFilter plugin %q: %w", st.Plugin, StatusErr(st))
		}
		c.observe(PreFilter, st.Code.String(), t0)
		fe := &FitError{NumAllNodes: len(nodes), PreFilterMessage: st.Message(), Statuses: make(map[string]*spec.Status, len(nodes))}
		for _, n := range nodes {
			fe.Statuses[n.Name()] = st
		}
		return res, fe
	}
	c.observe(PreFilter, "Success", t0)

	if ok, err := c.tryNominated(ctx, res); ok || err != nil {
		return res, err
	}

	t0 = c.now()
	err := c.findFeasible(ctx, nodes, res)
	c.observe(Filter, statusLabel(err), t0)
	if err != nil {
		return res, err
	}
	if res.Feasible, err = c.runExtenderFilters(ctx, res.Feasible, res.Rejected); err != nil {
		return res, err
	}
	if len(res.Feasible) == 0 {
		return res, &FitError{NumAllNodes: len(nodes), Statuses: res.Rejected}
	}
	if len(res.Feasible) == 1 && !in.AlwaysScore {
		res.Node = res.Feasible[0].Name()
		return res, nil
	}
	if err := c.prioritize(ctx, res); err != nil {
		return res, err
	}
	res.Node = selectHost(in.Rand, res.Feasible, res.Totals)
	return res, nil
}

func statusLabel(err error) string {
	if err != nil {
		return "Error"
	}
	return "Success"
}

func (c *cycle) now() time.Time {
	if c.in.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

func (c *cycle) observe(point, status string, t0 time.Time) {
	if c.in.Observer != nil {
		c.in.Observer.ExtensionPoint(point, status, time.Since(t0))
	}
}

// preFilter runs the PreFilter plugins, noting the ones that Skip; it
// returns the first rejection or error.
func (c *cycle) preFilter(ctx context.Context) *spec.Status {
	for _, p := range c.fw.PreFilter {
		st := runPreFilter(ctx, c.ck, c.state, c.pod, c.snap, p)
		switch {
		case st.IsSkip():
			c.skipped[p.Name()] = true
		case !st.IsSuccess():
			return st
		}
	}
	return nil
}

// filter runs the Filter plugins for the pod on one node, with the pods
// nominated there as Inputs.Nominated describes.
func (c *cycle) filter(ctx context.Context, ni *spec.NodeInfo) *spec.Status {
	if noms := c.in.Nominated[ni.Name()]; len(noms) > 0 {
		prio := corev1helpers.PodPriority(c.pod)
		var with *spec.NodeInfo
		for _, p := range noms {
			if p.UID != c.pod.UID && corev1helpers.PodPriority(p) >= prio {
				if with == nil {
					with = ni.Clone()
				}
				with.AddPod(p)
			}
		}
		if with != nil {
			if st := c.fw.filterNode(ctx, c.ck, c.state, c.skipped, c.pod, with); st != nil {
				return st
			}
		}
	}
	return c.fw.filterNode(ctx, c.ck, c.state, c.skipped, c.pod, ni)
}

// tryNominated tries the pod's nominated node (from an earlier preemption)
// first: when it passes Filter and the extenders it is the decision.
func (c *cycle) tryNominated(ctx context.Context, res *Result) (bool, error) {
	nom := c.pod.Status.NominatedNodeName
	if nom == "" {
		return false, nil
	}
	ni, err := c.snap.Get(nom)
	if err != nil {
		return false, nil
	}
	st := c.filter(ctx, ni)
	if st != nil && st.Code == spec.Error {
		return false, fmt.Errorf("running Filter plugin %q: %w", st.Plugin, StatusErr(st))
	}
	if !st.IsSuccess() {
		return false, nil
	}
	fit, err := c.runExtenderFilters(ctx, []*spec.NodeInfo{ni}, map[string]*spec.Status{})
	if err != nil || len(fit) != 1 {
		return false, err
	}
	res.Node, res.Feasible, res.Evaluated, res.FromNomination = nom, fit, 1, true
	return true, nil
}

// findFeasible runs Filter over the nodes from the start index, in
// parallel, until NumFeasibleNodesToFind feasible nodes are found. The
// outcome is that of a sequential search in the same order: verdicts are
// kept by search position and read in that order afterwards (workers claim
// positions in increasing order and finish every position they claim, so
// every position before the cut is evaluated).
func (c *cycle) findFeasible(ctx context.Context, nodes []*spec.NodeInfo, res *Result) error {
	numAll := len(nodes)
	pct := c.in.PercentageOfNodesToScore
	if pct == 0 {
		pct = c.fw.Profile.PercentageOfNodesToScore
	}
	toFind := NumFeasibleNodesToFind(pct, numAll)
	start := c.in.StartIndex % numAll
	if start < 0 {
		start += numAll
	}
	if len(c.fw.Filter) == 0 || c.allFiltersSkipped() {
		res.Feasible = make([]*spec.NodeInfo, toFind)
		for i := range res.Feasible {
			res.Feasible[i] = nodes[(start+i)%numAll]
		}
		res.Evaluated = toFind
		res.NextStartIndex = (start + toFind) % numAll
		return nil
	}
	var scratch Scratch
	if c.in.Scratch != nil {
		scratch = *c.in.Scratch
	}
	if cap(scratch.verdicts) < numAll {
		scratch.verdicts = make([]verdict, numAll)
	}
	verdicts := scratch.verdicts[:numAll]
	defer func() {
		clear(verdicts)
		if c.in.Scratch != nil {
			*c.in.Scratch = scratch
		}
	}()
	var found atomic.Int64
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallelize(fctx, c.in.Parallelism, numAll, func(i int) {
		st := c.filter(ctx, nodes[(start+i)%numAll])
		verdicts[i] = verdict{done: true, st: st}
		switch {
		case st.IsSuccess():
			if found.Add(1) >= int64(toFind) {
				cancel()
			}
		case !st.IsRejected():
			cancel()
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	res.Feasible = make([]*spec.NodeInfo, 0, min(toFind, numAll))
	processed := 0
	for i := 0; i < numAll && len(res.Feasible) < toFind && verdicts[i].done; i++ {
		ni, st := nodes[(start+i)%numAll], verdicts[i].st
		switch {
		case st.IsSuccess():
			res.Feasible = append(res.Feasible, ni)
		case st.IsRejected():
			res.Rejected[ni.Name()] = st
		default:
			return fmt.Errorf("running Filter plugin %q on node %q: %w", st.Plugin, ni.Name(), StatusErr(st))
		}
		processed = i + 1
	}
	res.Evaluated = processed
	res.NextStartIndex = (start + processed) % numAll
	return nil
}

func (c *cycle) allFiltersSkipped() bool {
	for _, p := range c.fw.Filter {
		if !c.skipped[p.Name()] {
			return false
		}
	}
	return true
}

// runExtenderFilters passes the feasible nodes through each extender's
// filter, adding its rejections to rejected.
func (c *cycle) runExtenderFilters(ctx context.Context, feasible []*spec.NodeInfo, rejected map[string]*spec.Status) ([]*spec.NodeInfo, error) {
	for _, e := range c.in.Extenders {
		if len(feasible) == 0 {
			break
		}
		fit, rej, err := e.Filter(ctx, c.pod, feasible)
		if err != nil {
			return nil, err
		}
		kept := make(map[string]bool, len(fit))
		for _, n := range fit {
			kept[n.Name()] = true
		}
		for _, n := range feasible {
			if kept[n.Name()] {
				continue
			}
			st := rej[n.Name()]
			if st == nil {
				st = &spec.Status{Code: spec.Unschedulable, Plugin: e.Name(), Reasons: []string{"node(s) were filtered out by " + e.Name()}}
			}
			rejected[n.Name()] = st
		}
		// Keep the search order, whatever order the extender replied in.
		out := make([]*spec.NodeInfo, 0, len(fit))
		for _, n := range feasible {
			if kept[n.Name()] {
				out = append(out, n)
			}
		}
		feasible = out
	}
	return feasible, nil
}

// prioritize runs PreScore, Score (in parallel over nodes), NormalizeScore
// and the extenders' Prioritize, filling res.Scores and res.Totals.
func (c *cycle) prioritize(ctx context.Context, res *Result) error {
	feasible := res.Feasible
	res.Totals = make([]int64, len(feasible))
	if len(c.fw.Score) == 0 && len(c.in.Extenders) == 0 {
		return nil
	}
	t0 := c.now()
	skipScore := map[string]bool{}
	for _, p := range c.fw.PreScore {
		st := runPreScore(ctx, c.ck, c.state, c.pod, feasible, p)
		switch {
		case st.IsSkip():
			skipScore[p.Name()] = true
		case !st.IsSuccess():
			c.observe(PreScore, "Error", t0)
			return fmt.Errorf("running PreScore plugin %q: %w", st.Plugin, StatusErr(st))
		}
	}
	c.observe(PreScore, "Success", t0)

	t0 = c.now()
	res.Scores = make([]PluginScores, len(c.fw.Score))
	var active []int
	for i, p := range c.fw.Score {
		ps := &res.Scores[i]
		ps.Plugin, ps.Weight = p.Name(), p.Weight
		if skipScore[p.Name()] {
			ps.Skipped = true
			continue
		}
		ps.Raw = make([]int64, len(feasible))
		active = append(active, i)
	}
	// failed[n] is the first failing status on node n, in plugin order.
	failed := make([]*spec.Status, len(feasible))
	var anyFailed atomic.Bool
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallelize(sctx, c.in.Parallelism, len(feasible), func(n int) {
		for _, i := range active {
			v, st := runScore(ctx, c.ck, c.state, c.pod, feasible[n], c.fw.Score[i])
			if !st.IsSuccess() {
				failed[n] = st
				anyFailed.Store(true)
				cancel()
				return
			}
			res.Scores[i].Raw[n] = v
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if anyFailed.Load() {
		for _, st := range failed {
			if st != nil {
				c.observe(Score, "Error", t0)
				return fmt.Errorf("running Score plugin %q: %w", st.Plugin, StatusErr(st))
			}
		}
	}
	scores := make([]spec.NodeScore, len(feasible))
	for _, i := range active {
		p, ps := c.fw.Score[i], &res.Scores[i]
		for n, v := range ps.Raw {
			scores[n] = spec.NodeScore{Name: feasible[n].Name(), Score: v}
		}
		if st := runNormalize(ctx, c.ck, c.state, c.pod, scores, p); !st.IsSuccess() {
			c.observe(Score, "Error", t0)
			return fmt.Errorf("running NormalizeScore plugin %q: %w", p.Name(), StatusErr(st))
		}
		ps.Normalized = make([]int64, len(feasible))
		for n, ns := range scores {
			if ns.Score < spec.MinNodeScore || ns.Score > spec.MaxNodeScore {
				c.observe(Score, "Error", t0)
				return fmt.Errorf("plugin %q returned an invalid score %d for node %q: scores must be in [%d, %d]",
					p.Name(), ns.Score, ns.Name, spec.MinNodeScore, spec.MaxNodeScore)
			}
			ps.Normalized[n] = ns.Score
			res.Totals[n] += ns.Score * p.Weight
		}
	}
	c.observe(Score, "Success", t0)
	return c.runExtenderPrioritize(ctx, res)
}

// runExtenderPrioritize adds each extender's weighted scores to the totals.
func (c *cycle) runExtenderPrioritize(ctx context.Context, res *Result) error {
	if len(c.in.Extenders) == 0 {
		return nil
	}
	idx := make(map[string]int, len(res.Feasible))
	for i, n := range res.Feasible {
		idx[n.Name()] = i
	}
	for _, e := range c.in.Extenders {
		scores, weight, err := e.Prioritize(ctx, c.pod, res.Feasible)
		if err != nil {
			return err
		}
		if scores == nil {
			continue
		}
		ps := PluginScores{Plugin: e.Name(), Weight: weight, Raw: make([]int64, len(res.Feasible)), Normalized: make([]int64, len(res.Feasible))}
		for host, v := range scores {
			i, ok := idx[host]
			if !ok {
				continue
			}
			ps.Raw[i], ps.Normalized[i] = v, v
			res.Totals[i] += v * weight
		}
		res.Scores = append(res.Scores, ps)
	}
	return nil
}

// selectHost picks the node with the highest total, uniformly among ties
// (reservoir sampling, as the kube-scheduler does).
func selectHost(r *rand.Rand, nodes []*spec.NodeInfo, totals []int64) string {
	best, ties := 0, 1
	for i := 1; i < len(nodes); i++ {
		switch {
		case totals[i] > totals[best]:
			best, ties = i, 1
		case totals[i] == totals[best]:
			ties++
			if r.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return nodes[best].Name()
}

// parallelize runs work(i) for i in [0,pieces) on up to workers
// goroutines, in chunks claimed in increasing order, until done or ctx
// ends. A claimed chunk is always finished, so when it returns every i
// below the highest one run has run.
func parallelize(ctx context.Context, workers, pieces int, work func(i int)) {
	if pieces == 0 {
		return
	}
	if workers > pieces {
		workers = pieces
	}
	chunk := 1
	for chunk*chunk < pieces {
		chunk++
	}
	if chunk > 64 {
		chunk = 64
	}
	if workers <= 1 {
		for i := 0; i < pieces; i++ {
			if i%chunk == 0 && ctx.Err() != nil {
				return
			}
			work(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				from := int(next.Add(int64(chunk))) - chunk
				if from >= pieces {
					return
				}
				for i := from; i < min(from+chunk, pieces); i++ {
					work(i)
				}
			}
		}()
	}
	wg.Wait()
}
