package framework_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
	"github.com/kubelab/kubelab/spec/spectest"
)

// plugin is a configurable test plugin; nil funcs keep the defaults
// (Success, score 0, no normalization).
type plugin struct {
	name      string
	preFilter func(pod *corev1.Pod) *spec.Status
	filter    func(n *spec.NodeInfo) *spec.Status
	preScore  func(nodes []*spec.NodeInfo) *spec.Status
	score     func(n *spec.NodeInfo) (int64, *spec.Status)
	normalize func(scores []spec.NodeScore) *spec.Status

	preScoreCalls, scoreCalls atomic.Int64
}

func (p *plugin) Name() string { return p.name }

// Each extension point is its own type, so a test composes exactly the
// interfaces a plugin implements.
type (
	preFilterPlugin struct{ *plugin }
	filterPlugin    struct{ *plugin }
	preScorePlugin  struct{ *plugin }
	scorePlugin     struct{ *plugin }
)

func (p preFilterPlugin) PreFilter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, _ spec.Snapshot) *spec.Status {
	if p.preFilter == nil {
		return nil
	}
	return p.preFilter(pod)
}

func (p filterPlugin) Filter(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, n *spec.NodeInfo) *spec.Status {
	if p.filter == nil {
		return nil
	}
	return p.filter(n)
}

func (p preScorePlugin) PreScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, nodes []*spec.NodeInfo) *spec.Status {
	p.preScoreCalls.Add(1)
	if p.preScore == nil {
		return nil
	}
	return p.preScore(nodes)
}

func (p scorePlugin) Score(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, n *spec.NodeInfo) (int64, *spec.Status) {
	p.scoreCalls.Add(1)
	if p.score == nil {
		return 0, nil
	}
	return p.score(n)
}

// preScoreScore is a PreScore and Score plugin; both is a PreFilter and
// Filter plugin.
type (
	preScoreScore struct {
		preScorePlugin
		scorePlugin
	}
	both struct {
		preFilterPlugin
		filterPlugin
	}
)

func (p preScoreScore) Name() string { return p.scorePlugin.name }
func (p both) Name() string          { return p.filterPlugin.name }

func (p scorePlugin) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	if p.normalize == nil {
		return nil
	}
	return p.normalize(scores)
}

// labelScore scores a node by its "score" label.
func labelScore(n *spec.NodeInfo) (int64, *spec.Status) {
	v, _ := strconv.ParseInt(n.Node.Labels["score"], 10, 64)
	return v, nil
}

// cluster returns nodes n0..n(count-1), each labelled score=score(i),
// their numbers zero-padded so that the snapshot's name order is their
// number order.
func cluster(count int, score func(i int) int) spec.Snapshot {
	var nodes []*corev1.Node
	width := len(strconv.Itoa(count - 1))
	for i := range count {
		nodes = append(nodes, spectest.MakeNode().Name(fmt.Sprintf("n%0*d", width, i)).Label("score", strconv.Itoa(score(i))).Obj())
	}
	return spectest.Snapshot(nodes)
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func schedule(t *testing.T, fw *framework.Framework, snap spec.Snapshot, in framework.Inputs) (*framework.Result, error) {
	t.Helper()
	if in.Rand == nil {
		in.Rand = seeded(1)
	}
	return framework.Schedule(context.Background(), fw, snap, spectest.MakePod().Name("p").Obj(), in)
}

func profile(name string) spec.Profile { return spec.Profile{SchedulerName: name} }

func TestTiesAreBrokenByTheInjectedRandomness(t *testing.T) {
	sc := &plugin{name: "S", score: labelScore}
	fw := &framework.Framework{Profile: profile("t"), Score: []framework.ScorePlugin{{ScorePlugin: scorePlugin{sc}, Weight: 1}}}
	// n1, n2 and n3 tie for the highest score.
	snap := cluster(5, func(i int) int { return map[int]int{1: 50, 2: 50, 3: 50}[i] })
	chosen := map[string]int{}
	for seed := range uint64(60) {
		res, err := schedule(t, fw, snap, framework.Inputs{Rand: seeded(seed)})
		if err != nil {
			t.Fatal(err)
		}
		again, err := schedule(t, fw, snap, framework.Inputs{Rand: seeded(seed)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Node != again.Node {
			t.Fatalf("seed %d chose %s, then %s", seed, res.Node, again.Node)
		}
		chosen[res.Node]++
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if chosen[n] == 0 {
			t.Errorf("tied node %s never chosen in 60 seeds: %v", n, chosen)
		}
	}
	if chosen["n0"]+chosen["n4"] > 0 {
		t.Errorf("a lower-scored node was chosen: %v", chosen)
	}
}

func TestPreScoreRunsForEveryPreScorePluginAndSkipSkipsScore(t *testing.T) {
	only := &plugin{name: "PreScoreOnly"} // PreScore without Score: upstream runs it too
	skipper := &plugin{name: "Skipper", preScore: func([]*spec.NodeInfo) *spec.Status { return spec.NewStatus(spec.Skip) }, score: labelScore}
	scorer := &plugin{name: "Scorer", score: labelScore}
	fw := &framework.Framework{Profile: profile("t"),
		PreScore: []spec.PreScorePlugin{preScorePlugin{only}, preScorePlugin{skipper}},
		Score: []framework.ScorePlugin{
			{ScorePlugin: preScoreScore{preScorePlugin{skipper}, scorePlugin{skipper}}, Weight: 5},
			{ScorePlugin: scorePlugin{scorer}, Weight: 1},
		}}
	res, err := schedule(t, fw, cluster(3, func(i int) int { return i * 10 }), framework.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if got := only.preScoreCalls.Load(); got != 1 {
		t.Errorf("PreScore of a plugin without Score ran %d times, want 1", got)
	}
	if got := skipper.scoreCalls.Load(); got != 0 {
		t.Errorf("Score of a plugin that skipped at PreScore ran %d times", got)
	}
	if !res.Scores[0].Skipped || res.Scores[1].Skipped {
		t.Errorf("Skipped = %v, %v; want true, false", res.Scores[0].Skipped, res.Scores[1].Skipped)
	}
	if res.Node != "n2" || !reflect.DeepEqual(res.Totals, []int64{0, 10, 20}) {
		t.Errorf("node %s totals %v; want n2 and [0 10 20] (the skipped plugin's weight counts nothing)", res.Node, res.Totals)
	}
}

func TestSkipAtPreFilterSkipsFilterAndFilterSkipPasses(t *testing.T) {
	rejectAll := func(*spec.NodeInfo) *spec.Status { return spec.NewStatus(spec.Unschedulable, "no") }
	skipped := &plugin{name: "Skipped", preFilter: func(*corev1.Pod) *spec.Status { return spec.NewStatus(spec.Skip) }, filter: rejectAll}
	skipping := &plugin{name: "FilterSkip", filter: func(*spec.NodeInfo) *spec.Status { return spec.NewStatus(spec.Skip) }}
	fw := &framework.Framework{Profile: profile("t"),
		PreFilter: []spec.PreFilterPlugin{preFilterPlugin{skipped}},
		Filter:    []spec.FilterPlugin{both{preFilterPlugin{skipped}, filterPlugin{skipped}}, filterPlugin{skipping}}}
	res, err := schedule(t, fw, cluster(3, func(int) int { return 0 }), framework.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Feasible) != 3 || len(res.Rejected) != 0 {
		t.Errorf("feasible %d, rejected %v; want every node feasible", len(res.Feasible), res.Rejected)
	}
}

func TestNormalizationAndWeights(t *testing.T) {
	// Raw scores 0..1000 normalized to 0..100 by dividing by 10.
	wide := &plugin{name: "Wide", score: func(n *spec.NodeInfo) (int64, *spec.Status) {
		v, _ := labelScore(n)
		return v * 10, nil
	}, normalize: func(scores []spec.NodeScore) *spec.Status {
		for i := range scores {
			scores[i].Score /= 10
		}
		return nil
	}}
	// Reverse prefers low labels.
	reverse := &plugin{name: "Reverse", score: func(n *spec.NodeInfo) (int64, *spec.Status) {
		v, _ := labelScore(n)
		return 100 - v, nil
	}}
	snap := cluster(2, func(i int) int { return []int{40, 70}[i] })
	for _, tc := range []struct {
		wWide, wReverse int64
		want            string
		totals          []int64
	}{
		{1, 1, "n0", []int64{40 + 60, 70 + 30}},     // 100 vs 100: tie, broken by Rand
		{3, 1, "n1", []int64{3*40 + 60, 3*70 + 30}}, // 180 vs 240
		{1, 3, "n0", []int64{40 + 3*60, 70 + 3*30}}, // 220 vs 160
	} {
		fw := &framework.Framework{Profile: profile("t"), Score: []framework.ScorePlugin{
			{ScorePlugin: scorePlugin{wide}, Weight: tc.wWide}, {ScorePlugin: scorePlugin{reverse}, Weight: tc.wReverse}}}
		res, err := schedule(t, fw, snap, framework.Inputs{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Totals, tc.totals) {
			t.Errorf("weights %d/%d: totals %v, want %v", tc.wWide, tc.wReverse, res.Totals, tc.totals)
		}
		if tc.totals[0] != tc.totals[1] && res.Node != tc.want {
			t.Errorf("weights %d/%d: chose %s, want %s", tc.wWide, tc.wReverse, res.Node, tc.want)
		}
		w := res.Scores[0]
		if !reflect.DeepEqual(w.Raw, []int64{400, 700}) || !reflect.DeepEqual(w.Normalized, []int64{40, 70}) || w.Weighted(1) != 70*tc.wWide {
			t.Errorf("Wide raw %v normalized %v weighted(n1) %d", w.Raw, w.Normalized, w.Weighted(1))
		}
	}
}

func TestScoreOutOfRangeIsAnError(t *testing.T) {
	raw := &plugin{name: "Raw", score: func(*spec.NodeInfo) (int64, *spec.Status) { return 101, nil }}
	fw := &framework.Framework{Profile: profile("t"), Score: []framework.ScorePlugin{{ScorePlugin: scorePlugin{raw}, Weight: 1}}}
	_, err := schedule(t, fw, cluster(2, func(int) int { return 0 }), framework.Inputs{})
	var fe *framework.FitError
	if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), "invalid score 101") {
		t.Errorf("err = %v, want a scheduler error about the invalid score", err)
	}
}

func TestUnschedulableVersusError(t *testing.T) {
	snap := cluster(4, func(i int) int { return i })
	notOdd := &plugin{name: "NotOdd", filter: func(n *spec.NodeInfo) *spec.Status {
		switch n.Name() {
		case "n1":
			return spec.NewStatus(spec.Unschedulable, "odd")
		case "n3":
			return spec.NewStatus(spec.UnschedulableAndUnresolvable, "odd")
		}
		return nil
	}}
	notEven := &plugin{name: "NotEven", filter: func(n *spec.NodeInfo) *spec.Status {
		if n.Name() == "n0" || n.Name() == "n2" {
			return spec.NewStatus(spec.Unschedulable, "even")
		}
		return nil
	}}
	broken := &plugin{name: "Broken", filter: func(n *spec.NodeInfo) *spec.Status {
		if n.Name() == "n2" {
			return spec.AsStatus(errors.New("disk on fire"))
		}
		return nil
	}}
	panics := &plugin{name: "Panics", filter: func(*spec.NodeInfo) *spec.Status { panic("boom") }}
	gate := &plugin{name: "Gate", preFilter: func(*corev1.Pod) *spec.Status {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, "waiting for gates")
	}}

	t.Run("every node rejected", func(t *testing.T) {
		fw := &framework.Framework{Profile: profile("t"), Filter: []spec.FilterPlugin{filterPlugin{notOdd}, filterPlugin{notEven}}}
		res, err := schedule(t, fw, snap, framework.Inputs{})
		var fe *framework.FitError
		if !errors.As(err, &fe) {
			t.Fatalf("err = %v, want a FitError", err)
		}
		if got, want := fe.Error(), "0/4 nodes are available: 2 even, 2 odd."; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
		if res.Node != "" || len(res.Rejected) != 4 || res.Rejected["n3"].Code != spec.UnschedulableAndUnresolvable || res.Rejected["n3"].Plugin != "NotOdd" {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("Error status", func(t *testing.T) {
		fw := &framework.Framework{Profile: profile("t"), Filter: []spec.FilterPlugin{filterPlugin{broken}}}
		_, err := schedule(t, fw, snap, framework.Inputs{})
		var fe *framework.FitError
		if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), `"Broken" on node "n2": disk on fire`) {
			t.Errorf("err = %v, want the plugin's error", err)
		}
	})
	t.Run("panic", func(t *testing.T) {
		fw := &framework.Framework{Profile: profile("t"), Filter: []spec.FilterPlugin{filterPlugin{panics}}}
		_, err := schedule(t, fw, snap, framework.Inputs{})
		var pe *framework.PanicError
		if !errors.As(err, &pe) || pe.Plugin != "Panics" || pe.Point != framework.Filter {
			t.Errorf("err = %v, want a PanicError from Panics at Filter", err)
		}
	})
	t.Run("PreFilter rejection", func(t *testing.T) {
		fw := &framework.Framework{Profile: profile("t"), PreFilter: []spec.PreFilterPlugin{preFilterPlugin{gate}}}
		res, err := schedule(t, fw, snap, framework.Inputs{})
		var fe *framework.FitError
		if !errors.As(err, &fe) || fe.Error() != "0/4 nodes are available: waiting for gates." || len(fe.Statuses) != 4 {
			t.Fatalf("err = %v, want a FitError naming the PreFilter reason for every node", err)
		}
		if res.Evaluated != 0 || len(res.Rejected) != 0 {
			t.Errorf("a PreFilter rejection evaluated nodes: %+v", res)
		}
	})
	t.Run("no nodes", func(t *testing.T) {
		fw := &framework.Framework{Profile: profile("t")}
		_, err := schedule(t, fw, spectest.Snapshot(nil), framework.Inputs{})
		var fe *framework.FitError
		if !errors.As(err, &fe) || err.Error() != "no nodes available to schedule pods" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no randomness", func(t *testing.T) {
		fw := &framework.Framework{Profile: profile("t")}
		_, err := framework.Schedule(context.Background(), fw, snap, spectest.MakePod().Name("p").Obj(), framework.Inputs{})
		if !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
}

// TestResultDoesNotDependOnParallelism schedules over 600 nodes, of which
// every third is rejected, with many ties, percentageOfNodesToScore
// cutting the search short: the Result is the same for every parallelism.
func TestResultDoesNotDependOnParallelism(t *testing.T) {
	snap := cluster(600, func(i int) int { return i % 4 })
	filter := &plugin{name: "F", filter: func(n *spec.NodeInfo) *spec.Status {
		i, _ := strconv.Atoi(strings.TrimPrefix(n.Name(), "n"))
		if i%3 == 0 {
			return spec.NewStatus(spec.Unschedulable, "third")
		}
		return nil
	}}
	sc := &plugin{name: "S", score: labelScore}
	fw := &framework.Framework{Profile: profile("t"), Filter: []spec.FilterPlugin{filterPlugin{filter}},
		Score: []framework.ScorePlugin{{ScorePlugin: scorePlugin{sc}, Weight: 1}}}
	type outcome struct {
		Node     string
		Feasible []string
		Rejected []string
		Next     int
		Totals   []int64
	}
	run := func(par int, start int) outcome {
		res, err := schedule(t, fw, snap, framework.Inputs{Parallelism: par, StartIndex: start, PercentageOfNodesToScore: 20, Rand: seeded(7)})
		if err != nil {
			t.Fatal(err)
		}
		o := outcome{Node: res.Node, Next: res.NextStartIndex, Totals: res.Totals}
		for _, n := range res.Feasible {
			o.Feasible = append(o.Feasible, n.Name())
		}
		for n := range res.Rejected {
			o.Rejected = append(o.Rejected, n)
		}
		sort.Strings(o.Rejected)
		return o
	}
	for _, start := range []int{0, 590} {
		want := run(1, start)
		// 20% of 600 = 120 feasible nodes; two in three are: 180 looked at.
		if len(want.Feasible) != 120 || len(want.Rejected) != 60 || want.Next != (start+180)%600 {
			t.Fatalf("start %d: %d feasible, %d rejected, next %d; want 120, 60, %d", start, len(want.Feasible), len(want.Rejected), want.Next, (start+180)%600)
		}
		for _, par := range []int{2, 4, 16} {
			for range 5 {
				if got := run(par, start); !reflect.DeepEqual(got, want) {
					t.Fatalf("start %d parallelism %d: %+v\nwant %+v", start, par, got, want)
				}
			}
		}
	}
}

// extender is a test Extender: it rejects one node and scores by name.
type extender struct{}

func (extender) Name() string { return "extender test" }

func (extender) Filter(_ context.Context, _ *corev1.Pod, nodes []*spec.NodeInfo) ([]*spec.NodeInfo, map[string]*spec.Status, error) {
	var fit []*spec.NodeInfo
	rejected := map[string]*spec.Status{}
	for _, n := range nodes {
		if n.Name() == "n0" {
			rejected["n0"] = &spec.Status{Code: spec.UnschedulableAndUnresolvable, Reasons: []string{"not n0"}, Plugin: "extender test"}
			continue
		}
		fit = append([]*spec.NodeInfo{n}, fit...) // reversed: the cycle keeps search order
	}
	return fit, rejected, nil
}

func (extender) Prioritize(_ context.Context, _ *corev1.Pod, _ []*spec.NodeInfo) (map[string]int64, int64, error) {
	return map[string]int64{"n1": 100, "n2": 0, "elsewhere": 100}, 2, nil
}

func TestExtendersFilterAndPrioritizeAfterThePlugins(t *testing.T) {
	sc := &plugin{name: "S", score: labelScore}
	fw := &framework.Framework{Profile: profile("t"), Score: []framework.ScorePlugin{{ScorePlugin: scorePlugin{sc}, Weight: 1}}}
	res, err := schedule(t, fw, cluster(3, func(i int) int { return []int{100, 0, 90}[i] }), framework.Inputs{Extenders: []framework.Extender{extender{}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := res.Rejected["n0"]; st == nil || st.Plugin != "extender test" || st.Message() != "not n0" {
		t.Errorf("n0: %+v", st)
	}
	if len(res.Feasible) != 2 || res.Feasible[0].Name() != "n1" {
		t.Errorf("feasible %v, want n1, n2 in search order", res.Feasible)
	}
	// n1: 0 + 2×100; n2: 90 + 0.
	if res.Node != "n1" || !reflect.DeepEqual(res.Totals, []int64{200, 90}) {
		t.Errorf("node %s totals %v", res.Node, res.Totals)
	}
	if ext := res.Scores[len(res.Scores)-1]; ext.Plugin != "extender test" || ext.Weighted(0) != 200 {
		t.Errorf("extender scores %+v", ext)
	}
}

func TestSearchStartsAtTheStartIndexAndNominatedNodeFirst(t *testing.T) {
	fw := &framework.Framework{Profile: profile("t")}
	snap := cluster(150, func(int) int { return 0 })
	// 150 nodes, 50%: 100 wanted (the floor), from node 140 on.
	res, err := schedule(t, fw, snap, framework.Inputs{StartIndex: 140, PercentageOfNodesToScore: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Feasible[0].Name() != "n140" || len(res.Feasible) != 100 || res.NextStartIndex != 90 {
		t.Errorf("first %s, %d feasible, next %d; want n140, 100, 90", res.Feasible[0].Name(), len(res.Feasible), res.NextStartIndex)
	}
	pod := spectest.MakePod().Name("p").NominatedNode("n007").Obj()
	res, err = framework.Schedule(context.Background(), fw, snap, pod, framework.Inputs{Rand: seeded(1)})
	if err != nil || res.Node != "n007" || !res.FromNomination || res.Evaluated != 1 {
		t.Errorf("nominated: %+v, %v", res, err)
	}
}

func TestFitErrorMessage(t *testing.T) {
	fe := &framework.FitError{NumAllNodes: 5, Statuses: map[string]*spec.Status{
		"a": spec.NewStatus(spec.Unschedulable, "Insufficient cpu"),
		"b": spec.NewStatus(spec.Unschedulable, "Insufficient cpu", "Insufficient memory"),
		"c": spec.NewStatus(spec.Unschedulable, "Insufficient cpu"),
		"d": spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {node-role: x}"),
		"e": spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {node-role: x}"),
	}, PostFilterMessage: "preemption: 0/5 nodes are available: 5 No preemption victims found for incoming pod."}
	want := "0/5 nodes are available: 1 Insufficient memory, 2 node(s) had untolerated taint {node-role: x}, 3 Insufficient cpu. " +
		"preemption: 0/5 nodes are available: 5 No preemption victims found for incoming pod."
	if got := fe.Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	pre := &framework.FitError{NumAllNodes: 3, PreFilterMessage: "node(s) didn't match pod topology spread constraints (missing required label)"}
	if got, want := pre.Error(), "0/3 nodes are available: node(s) didn't match pod topology spread constraints (missing required label)."; got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	for _, c := range []struct {
		pct       int32
		all, want int
	}{
		{0, 10, 10}, {0, 99, 99}, {0, 100, 100}, {0, 1000, 420}, {0, 5000, 500}, {0, 6000, 300},
		{0, 20000, 1000}, {0, 1500, 570}, {30, 1000, 300}, {1, 1000, 100}, {100, 5000, 5000},
	} {
		if got := framework.NumFeasibleNodesToFind(c.pct, c.all); got != c.want {
			t.Errorf("framework.NumFeasibleNodesToFind(%d, %d) = %d, want %d", c.pct, c.all, got, c.want)
		}
	}
}
