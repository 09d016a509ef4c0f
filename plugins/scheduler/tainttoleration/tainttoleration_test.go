package tainttoleration_test

import (
	"errors"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/tainttoleration"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestFilter(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("clean").Obj(),
		spectest.MakeNode().Name("gpu").Taint("gpu", "true", corev1.TaintEffectNoSchedule).Obj(),
		spectest.MakeNode().Name("evict").Taint("maint", "", corev1.TaintEffectNoExecute).Obj(),
		spectest.MakeNode().Name("soft").Taint("soft", "x", corev1.TaintEffectPreferNoSchedule).Obj(),
	})
	pl, err := tainttoleration.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		node string
		want *spec.Status
	}{
		{"clean node", spectest.MakePod().Name("p").Obj(), "clean", nil},
		{"NoSchedule untolerated", spectest.MakePod().Name("p").Obj(), "gpu", spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {gpu: true}")},
		{"NoSchedule tolerated by Equal", spectest.MakePod().Name("p").Toleration("gpu", corev1.TolerationOpEqual, "true", corev1.TaintEffectNoSchedule).Obj(), "gpu", nil},
		{"wrong value", spectest.MakePod().Name("p").Toleration("gpu", corev1.TolerationOpEqual, "false", corev1.TaintEffectNoSchedule).Obj(), "gpu", spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {gpu: true}")},
		{"NoExecute untolerated", spectest.MakePod().Name("p").Obj(), "evict", spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {maint: }")},
		{"PreferNoSchedule does not filter", spectest.MakePod().Name("p").Obj(), "soft", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, snap, tc.node), tc.want)
		})
	}
}

func TestScore(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("clean").Obj(),
		spectest.MakeNode().Name("one").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
		spectest.MakeNode().Name("two").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Taint("b", "1", corev1.TaintEffectPreferNoSchedule).Taint("c", "1", corev1.TaintEffectNoSchedule).Obj(),
	})
	pl, _ := tainttoleration.Plugin().New(nil, nil)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want map[string]int64
	}{
		{"fewer untolerated soft taints score higher", spectest.MakePod().Name("p").Obj(), map[string]int64{"clean": 100, "one": 50, "two": 0}},
		{"tolerated soft taint does not count", spectest.MakePod().Name("p").Toleration("b", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule).Obj(), map[string]int64{"clean": 100, "one": 0, "two": 0}},
		{"NoSchedule toleration does not help soft taints", spectest.MakePod().Name("p").Toleration("a", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule).Obj(), map[string]int64{"clean": 100, "one": 50, "two": 0}},
		{"empty-effect toleration tolerates all", spectest.MakePod().Name("p").Toleration("", corev1.TolerationOpExists, "", "").Obj(), map[string]int64{"clean": 100, "one": 100, "two": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := schedtest.RunScore(t, pl, tc.pod, snap); !maps.Equal(got, tc.want) {
				t.Errorf("scores = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScoreOff(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("one").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Obj()})
	pl, err := tainttoleration.Plugin().New(map[string]string{"score": "false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := schedtest.RunScore(t, pl, spectest.MakePod().Name("p").Obj(), snap); got != nil {
		t.Errorf("score=false still scores: %v", got)
	}
	if _, err := tainttoleration.Plugin().New(map[string]string{"score": "no"}, nil); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("score=no: %v, want ErrInvalid", err)
	}
}
