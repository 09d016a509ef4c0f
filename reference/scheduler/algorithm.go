package scheduler

import (
	"context"
	"errors"
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

// errNoNodesAvailable is the kube-scheduler's message for an empty cluster.
const errNoNodesAvailable = "no nodes available to schedule pods"

// minFeasibleNodesToFind and minFeasibleNodesPercentageToFind bound the
// adaptive percentageOfNodesToScore, as in the kube-scheduler.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// fitError says why no node fits a pod; its message reads like the
// kube-scheduler's FitError.
type fitError struct {
	numAll        int
	preFilterMsg  string
	statuses      map[string]*spec.Status
	postFilterMsg string
	noNodes       bool
}

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
// counted reasons sorted as strings, then the PostFilter's message.
func (f *fitError) Error() string {
	if f.noNodes {
		return errNoNodesAvailable
	}
	msg := fmt.Sprintf("0/%d nodes are available:", f.numAll)
	if f.preFilterMsg != "" {
		msg += " " + f.preFilterMsg + "."
	} else {
		counts := map[string]int{}
		for _, s := range f.statuses {
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
	if f.postFilterMsg != "" {
		msg += " " + f.postFilterMsg
	}
	return msg
}

// numFeasibleNodesToFind is how many feasible nodes to look for among
// numAll: all below 100 nodes, otherwise percentage% (adaptive default
// 50 - numAll/125, at least 5%) and at least 100.
func numFeasibleNodesToFind(percentage int32, numAll int) int {
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

// parallelize runs work(i) for i in [0,pieces) on the scheduler's workers,
// in chunks, until done or ctx ends.
func (s *Scheduler) parallelize(ctx context.Context, pieces int, work func(i int)) {
	if pieces == 0 {
		return
	}
	workers := s.parallelism
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
				to := min(from+chunk, pieces)
				for i := from; i < to; i++ {
					work(i)
				}
			}
		}()
	}
	wg.Wait()
}

// cycle is one pod's scheduling attempt.
type cycle struct {
	fw      *framework
	state   *spec.CycleState
	pod     *corev1.Pod
	sample  bool
	explain *Explanation
	// skipFilter and skipScore are plugins that returned Skip at PreFilter
	// and PreScore.
	skipFilter map[string]bool
	skipScore  map[string]bool
	// explainIdx maps node names to their entry in explain.Nodes.
	explainIdx map[string]int
	// nominated are the pods nominated to each node (after preemption).
	nominated map[string][]*corev1.Pod
}

// filter runs the Filter plugins for the cycle's pod on one node. When
// pods of at least its priority are nominated to the node, it must fit
// both with them (their room is reserved) and without them (as upstream:
// they may not come).
func (c *cycle) filter(ctx context.Context, ni *spec.NodeInfo) *spec.Status {
	if noms := c.nominated[ni.Name()]; len(noms) > 0 {
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
			if st := c.fw.filterNode(ctx, c.sample, c.state, c.skipFilter, c.pod, with); st != nil {
				return st
			}
		}
	}
	return c.fw.filterNode(ctx, c.sample, c.state, c.skipFilter, c.pod, ni)
}

// scheduleResult is a successful scheduling decision.
type scheduleResult struct {
	node      string
	evaluated int
	feasible  int
}

// schedulePod picks a node for the cycle's pod on snap. A pod that fits
// nowhere gives a *fitError; anything else is a scheduler error.
func (s *Scheduler) schedulePod(ctx context.Context, c *cycle, snap *snapshot) (scheduleResult, error) {
	fw := c.fw
	nodes := snap.Nodes()
	if len(nodes) == 0 {
		return scheduleResult{}, &fitError{noNodes: true}
	}
	start := time.Now()
	c.skipFilter = map[string]bool{}
	for _, p := range fw.preFilter {
		st := fw.runPreFilter(ctx, c.sample, c.state, c.pod, snap, p)
		switch {
		case st.IsSkip():
			c.skipFilter[p.Name()] = true
		case st.IsRejected():
			fe := &fitError{numAll: len(nodes), preFilterMsg: st.Message(), statuses: map[string]*spec.Status{}}
			for _, n := range nodes {
				fe.statuses[n.Name()] = st
			}
			s.metrics.extensionPointDuration.WithLabelValues(epPreFilter, st.Code.String(), fw.name).Observe(since(start))
			return scheduleResult{}, fe
		case !st.IsSuccess():
			return scheduleResult{}, fmt.Errorf("running PreFilter plugin %q: %w", st.Plugin, st.Err)
		}
	}
	s.metrics.extensionPointDuration.WithLabelValues(epPreFilter, "Success", fw.name).Observe(since(start))

	// A pod nominated by an earlier preemption tries its node first.
	if nom := c.pod.Status.NominatedNodeName; nom != "" {
		if ni, err := snap.Get(nom); err == nil {
			st := c.filter(ctx, ni)
			if st.IsSuccess() {
				feasible, _, err := s.runExtenderFilters(ctx, fw, c.pod, []*spec.NodeInfo{ni}, map[string]*spec.Status{})
				if err != nil {
					return scheduleResult{}, err
				}
				if len(feasible) == 1 {
					c.record(ni.Name(), nil)
					c.markChosen(nom)
					return scheduleResult{node: nom, evaluated: 1, feasible: 1}, nil
				}
			} else if st.Code == spec.Error {
				return scheduleResult{}, fmt.Errorf("running Filter plugin %q: %w", st.Plugin, st.Err)
			}
		}
	}

	start = time.Now()
	feasible, statuses, err := s.findFeasible(ctx, c, nodes)
	s.metrics.extensionPointDuration.WithLabelValues(epFilter, statusLabel(err), fw.name).Observe(since(start))
	if err != nil {
		return scheduleResult{}, err
	}
	feasible, statuses, err = s.runExtenderFiltersCycle(ctx, c, fw, c.pod, feasible, statuses)
	if err != nil {
		return scheduleResult{}, err
	}
	evaluated := len(feasible) + len(statuses)
	if len(feasible) == 0 {
		return scheduleResult{}, &fitError{numAll: len(nodes), statuses: statuses}
	}
	if len(feasible) == 1 && c.explain == nil {
		return scheduleResult{node: feasible[0].Name(), evaluated: evaluated, feasible: 1}, nil
	}
	totals, err := s.prioritize(ctx, c, feasible)
	if err != nil {
		return scheduleResult{}, err
	}
	node := selectHost(feasible, totals)
	c.markChosen(node)
	return scheduleResult{node: node, evaluated: evaluated, feasible: len(feasible)}, nil
}

func statusLabel(err error) string {
	if err != nil {
		return "Error"
	}
	return "Success"
}

// findFeasible runs Filter over the nodes from the round-robin start in
// parallel, stopping once enough feasible nodes were found. It returns the
// feasible nodes and the rejections of the others it looked at.
func (s *Scheduler) findFeasible(ctx context.Context, c *cycle, nodes []*spec.NodeInfo) ([]*spec.NodeInfo, map[string]*spec.Status, error) {
	fw := c.fw
	numAll := len(nodes)
	toFind := numFeasibleNodesToFind(s.percentageFor(fw), numAll)
	startIdx := s.nextStartNodeIndex % numAll
	statuses := map[string]*spec.Status{}
	if len(fw.filter) == 0 || allSkipped(fw.filter, c.skipFilter) {
		out := make([]*spec.NodeInfo, toFind)
		for i := range out {
			out[i] = nodes[(startIdx+i)%numAll]
			c.record(out[i].Name(), nil)
		}
		s.nextStartNodeIndex = (startIdx + toFind) % numAll
		return out, statuses, nil
	}
	feasible := make([]*spec.NodeInfo, toFind)
	// rejected is indexed by position from startIdx; the buffer is reused
	// across cycles (only the scheduling goroutine runs findFeasible) and
	// cleared up to the highest position looked at.
	if cap(s.rejectedBuf) < numAll {
		s.rejectedBuf = make([]*spec.Status, numAll)
	}
	rejected := s.rejectedBuf[:numAll]
	var maxSeen atomic.Int64
	maxSeen.Store(-1)
	defer func() { clear(rejected[:maxSeen.Load()+1]) }()
	var found atomic.Int32
	var errOnce sync.Once
	var firstErr error
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.parallelize(fctx, numAll, func(i int) {
		for {
			m := maxSeen.Load()
			if int64(i) <= m || maxSeen.CompareAndSwap(m, int64(i)) {
				break
			}
		}
		ni := nodes[(startIdx+i)%numAll]
		st := c.filter(fctx, ni)
		switch {
		case st.IsSuccess():
			k := found.Add(1)
			if int(k) > toFind {
				found.Add(-1)
				cancel()
				return
			}
			feasible[k-1] = ni
		case st.IsRejected():
			rejected[i] = st
		default:
			errOnce.Do(func() {
				firstErr = fmt.Errorf("running Filter plugin %q on node %q: %w", st.Plugin, ni.Name(), st.Err)
				cancel()
			})
		}
	})
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	feasible = feasible[:found.Load()]
	for i, st := range rejected[:maxSeen.Load()+1] {
		if st != nil {
			statuses[nodes[(startIdx+i)%numAll].Name()] = st
		}
	}
	if c.explain != nil {
		for _, n := range feasible {
			c.record(n.Name(), nil)
		}
		for name, st := range statuses {
			c.record(name, st)
		}
	}
	s.nextStartNodeIndex = (startIdx + len(feasible) + len(statuses)) % numAll
	return feasible, statuses, nil
}

func allSkipped(ps []spec.FilterPlugin, skip map[string]bool) bool {
	for _, p := range ps {
		if !skip[p.Name()] {
			return false
		}
	}
	return true
}

// percentageFor is the profile's percentageOfNodesToScore, or the
// scheduler's.
func (s *Scheduler) percentageFor(fw *framework) int32 {
	if fw.profile.PercentageOfNodesToScore > 0 {
		return fw.profile.PercentageOfNodesToScore
	}
	return s.cfg.PercentageOfNodesToScore
}

// prioritize runs PreScore, Score, NormalizeScore and the extenders'
// prioritize and returns each feasible node's weighted total.
func (s *Scheduler) prioritize(ctx context.Context, c *cycle, feasible []*spec.NodeInfo) ([]int64, error) {
	fw := c.fw
	totals := make([]int64, len(feasible))
	if len(fw.score) == 0 && !hasPrioritizers(fw.extenders) {
		return totals, nil
	}
	start := time.Now()
	c.skipScore = map[string]bool{}
	for _, p := range fw.preScore {
		st := fw.runPreScore(ctx, c.sample, c.state, c.pod, feasible, p)
		switch {
		case st.IsSkip():
			c.skipScore[p.Name()] = true
		case !st.IsSuccess():
			return nil, fmt.Errorf("running PreScore plugin %q: %w", st.Plugin, statusErr(st))
		}
	}
	s.metrics.extensionPointDuration.WithLabelValues(epPreScore, "Success", fw.name).Observe(since(start))
	start = time.Now()
	var active []scorePlugin
	for _, p := range fw.score {
		if !c.skipScore[p.Name()] {
			active = append(active, p)
		}
	}
	scores := make([][]spec.NodeScore, len(active))
	for i := range scores {
		scores[i] = make([]spec.NodeScore, len(feasible))
	}
	var errOnce sync.Once
	var firstErr error
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.parallelize(sctx, len(feasible), func(n int) {
		for i, p := range active {
			var t0 time.Time
			if c.sample {
				t0 = time.Now()
			}
			v, st := fw.runScore(sctx, c.state, c.pod, feasible[n], p)
			fw.observe(c.sample, p.Name(), epScore, t0, st)
			if !st.IsSuccess() {
				errOnce.Do(func() {
					firstErr = fmt.Errorf("running Score plugin %q: %w", p.Name(), statusErr(st))
					cancel()
				})
				return
			}
			scores[i][n] = spec.NodeScore{Name: feasible[n].Name(), Score: v}
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	for i, p := range active {
		if st := fw.runNormalize(ctx, c.sample, c.state, c.pod, scores[i], p); !st.IsSuccess() {
			return nil, fmt.Errorf("running NormalizeScore plugin %q: %w", p.Name(), statusErr(st))
		}
		for n, ns := range scores[i] {
			if ns.Score < spec.MinNodeScore || ns.Score > spec.MaxNodeScore {
				return nil, fmt.Errorf("plugin %q returned an invalid score %d for node %q: scores must be in [%d, %d]",
					p.Name(), ns.Score, ns.Name, spec.MinNodeScore, spec.MaxNodeScore)
			}
			w := ns.Score * p.weight
			totals[n] += w
			c.recordScore(feasible[n].Name(), p.Name(), w)
		}
	}
	s.metrics.extensionPointDuration.WithLabelValues(epScore, "Success", fw.name).Observe(since(start))
	if err := s.runExtenderPrioritize(ctx, c, feasible, totals); err != nil {
		return nil, err
	}
	return totals, nil
}

func statusErr(st *spec.Status) error {
	if st.Err != nil {
		return st.Err
	}
	return errors.New(st.Message())
}

// selectHost picks the node with the highest total, choosing uniformly
// among ties (reservoir sampling, as the kube-scheduler does).
func selectHost(nodes []*spec.NodeInfo, totals []int64) string {
	best, ties := 0, 1
	for i := 1; i < len(nodes); i++ {
		switch {
		case totals[i] > totals[best]:
			best, ties = i, 1
		case totals[i] == totals[best]:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return nodes[best].Name()
}
