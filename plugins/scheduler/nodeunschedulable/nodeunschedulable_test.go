package nodeunschedulable_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeunschedulable"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestFilter(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("ok").Obj(), spectest.MakeNode().Name("cordoned").Unschedulable().Obj()})
	pl, err := nodeunschedulable.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rejected := spec.NewStatus(spec.UnschedulableAndUnresolvable, nodeunschedulable.ErrReasonUnschedulable)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		node string
		want *spec.Status
	}{
		{"schedulable node", spectest.MakePod().Name("p").Obj(), "ok", nil},
		{"cordoned node", spectest.MakePod().Name("p").Obj(), "cordoned", rejected},
		{"tolerates unschedulable", spectest.MakePod().Name("p").Toleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule).Obj(), "cordoned", nil},
		{"tolerates everything", spectest.MakePod().Name("p").Toleration("", corev1.TolerationOpExists, "", "").Obj(), "cordoned", nil},
		{"tolerates another effect only", spectest.MakePod().Name("p").Toleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute).Obj(), "cordoned", rejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, snap, tc.node), tc.want)
		})
	}
}
