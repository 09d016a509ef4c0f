package baselines_test

import (
	"errors"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/baselines"
	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func snapshot() spec.Snapshot {
	return spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("c-empty").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj(),
		spectest.MakeNode().Name("a-half").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj(),
		spectest.MakeNode().Name("b-busy").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj(),
	},
		spectest.MakePod().Name("h1").Node("a-half").Req(spectest.Res{"cpu": "2", "memory": "4Gi"}).Obj(),
		spectest.MakePod().Name("b1").Node("b-busy").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(),
		spectest.MakePod().Name("b2").Node("b-busy").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(),
		spectest.MakePod().Name("b3").Node("b-busy").Req(spectest.Res{"cpu": "1", "memory": "2Gi"}).Obj(),
	)
}

func best(scores map[string]int64) string {
	var name string
	top := int64(-1)
	for n, s := range scores {
		if s > top || (s == top && n < name) {
			name, top = n, s
		}
	}
	return name
}

func newPlugin(t *testing.T, p spec.SchedulerPlugin, args map[string]string) spec.Named {
	t.Helper()
	pl, err := p.New(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func TestBinPackingPrefersTheFullestNode(t *testing.T) {
	pod := spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "500m", "memory": "1Gi"}).Obj()
	got := schedtest.RunScore(t, newPlugin(t, baselines.BinPackingPlugin(), nil), pod, snapshot())
	if best(got) != "b-busy" || !(got["b-busy"] > got["a-half"] && got["a-half"] > got["c-empty"]) {
		t.Errorf("scores = %v, want b-busy > a-half > c-empty", got)
	}
}

func TestSpreadPrefersTheEmptiestNode(t *testing.T) {
	pod := spectest.MakePod().Name("p").Req(spectest.Res{"cpu": "500m"}).Obj()
	got := schedtest.RunScore(t, newPlugin(t, baselines.SpreadPlugin(), nil), pod, snapshot())
	if got["c-empty"] != 100 || got["b-busy"] != 0 || !(got["a-half"] > 0 && got["a-half"] < 100) {
		t.Errorf("scores = %v, want c-empty 100 > a-half > b-busy 0", got)
	}
}

func TestRandomIsDeterministicGivenTheSeed(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("n1").Obj(), spectest.MakeNode().Name("n2").Obj(), spectest.MakeNode().Name("n3").Obj(), spectest.MakeNode().Name("n4").Obj(),
	})
	picks := func(seed string) []string {
		pl := newPlugin(t, baselines.RandomPlugin(), map[string]string{"seed": seed})
		var out []string
		for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
			scores := schedtest.RunScore(t, pl, spectest.MakePod().Name(name).Obj(), snap)
			hundred := 0
			for _, s := range scores {
				if s == 100 {
					hundred++
				}
			}
			if hundred != 1 {
				t.Fatalf("scores = %v, want exactly one node at 100", scores)
			}
			out = append(out, best(scores))
		}
		return out
	}
	a, b, c := picks("42"), picks("42"), picks("7")
	if !equal(a, b) {
		t.Errorf("same seed, different picks: %v vs %v", a, b)
	}
	if equal(a, c) {
		t.Errorf("seeds 42 and 7 picked the same nodes for 8 pods: %v", a)
	}
	distinct := map[string]bool{}
	for _, n := range a {
		distinct[n] = true
	}
	if len(distinct) < 2 {
		t.Errorf("8 pods all went to %v; not random", a)
	}
	if _, err := baselines.RandomPlugin().New(map[string]string{"seed": "x"}, nil); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("bad seed: %v, want ErrInvalid", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFirstFitPicksTheFirstNodeByName(t *testing.T) {
	got := schedtest.RunScore(t, newPlugin(t, baselines.FirstFitPlugin(), nil), spectest.MakePod().Name("p").Obj(), snapshot())
	want := map[string]int64{"a-half": 100, "b-busy": 0, "c-empty": 0}
	if !maps.Equal(got, want) {
		t.Errorf("scores = %v, want %v", got, want)
	}
}
