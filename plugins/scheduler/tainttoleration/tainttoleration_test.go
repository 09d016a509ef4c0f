package tainttoleration_test

import (
	"errors"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/tainttoleration"
	"github.com/kubelab/kubelab/spec"
)

func TestFilter(t *testing.T) {
	snap := schedtest.Snapshot([]*corev1.Node{
		schedtest.MakeNode("clean").Obj(),
		schedtest.MakeNode("gpu").Taint("gpu", "true", corev1.TaintEffectNoSchedule).Obj(),
		schedtest.MakeNode("evict").Taint("maint", "", corev1.TaintEffectNoExecute).Obj(),
		schedtest.MakeNode("soft").Taint("soft", "x", corev1.TaintEffectPreferNoSchedule).Obj(),
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
		{"clean node", schedtest.MakePod("p").Obj(), "clean", nil},
		{"NoSchedule untolerated", schedtest.MakePod("p").Obj(), "gpu", spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {gpu: true}")},
		{"NoSchedule tolerated by Equal", schedtest.MakePod("p").Toleration("gpu", corev1.TolerationOpEqual, "true", corev1.TaintEffectNoSchedule).Obj(), "gpu", nil},
		{"wrong value", schedtest.MakePod("p").Toleration("gpu", corev1.TolerationOpEqual, "false", corev1.TaintEffectNoSchedule).Obj(), "gpu", spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {gpu: true}")},
		{"NoExecute untolerated", schedtest.MakePod("p").Obj(), "evict", spec.NewStatus(spec.UnschedulableAndUnresolvable, "node(s) had untolerated taint {maint: }")},
		{"PreferNoSchedule does not filter", schedtest.MakePod("p").Obj(), "soft", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(pl, tc.pod, snap, tc.node), tc.want)
		})
	}
}

func TestScore(t *testing.T) {
	snap := schedtest.Snapshot([]*corev1.Node{
		schedtest.MakeNode("clean").Obj(),
		schedtest.MakeNode("one").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
		schedtest.MakeNode("two").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Taint("b", "1", corev1.TaintEffectPreferNoSchedule).Taint("c", "1", corev1.TaintEffectNoSchedule).Obj(),
	})
	pl, _ := tainttoleration.Plugin().New(nil, nil)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want map[string]int64
	}{
		{"fewer untolerated soft taints score higher", schedtest.MakePod("p").Obj(), map[string]int64{"clean": 100, "one": 50, "two": 0}},
		{"tolerated soft taint does not count", schedtest.MakePod("p").Toleration("b", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule).Obj(), map[string]int64{"clean": 100, "one": 0, "two": 0}},
		{"NoSchedule toleration does not help soft taints", schedtest.MakePod("p").Toleration("a", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule).Obj(), map[string]int64{"clean": 100, "one": 50, "two": 0}},
		{"empty-effect toleration tolerates all", schedtest.MakePod("p").Toleration("", corev1.TolerationOpExists, "", "").Obj(), map[string]int64{"clean": 100, "one": 100, "two": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := schedtest.RunScore(pl, tc.pod, snap); !maps.Equal(got, tc.want) {
				t.Errorf("scores = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScoreOff(t *testing.T) {
	snap := schedtest.Snapshot([]*corev1.Node{schedtest.MakeNode("one").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Obj()})
	pl, err := tainttoleration.Plugin().New(map[string]string{"score": "false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := schedtest.RunScore(pl, schedtest.MakePod("p").Obj(), snap); got != nil {
		t.Errorf("score=false still scores: %v", got)
	}
	if _, err := tainttoleration.Plugin().New(map[string]string{"score": "no"}, nil); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("score=no: %v, want ErrInvalid", err)
	}
}
