package schedulinggates_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/schedulinggates"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestPreFilter(t *testing.T) {
	pl, err := schedulinggates.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pf := pl.(spec.PreFilterPlugin)
	snap := spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("n1").Obj()})
	if st := pf.PreFilter(context.Background(), &spec.CycleState{}, spectest.MakePod().Name("p").Obj(), snap); !st.IsSkip() {
		t.Errorf("ungated pod: %+v, want Skip", st)
	}
	gated := spectest.MakePod().Name("g").Obj()
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}, {Name: "example.com/review"}}
	schedtest.AssertStatus(t, pf.PreFilter(context.Background(), &spec.CycleState{}, gated, snap),
		spec.NewStatus(spec.UnschedulableAndUnresolvable, "waiting for scheduling gates: [example.com/quota example.com/review]"))
}
