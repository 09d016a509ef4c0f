package nodename_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/nodename"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestFilter(t *testing.T) {
	snap := spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("n1").Obj(), spectest.MakeNode().Name("n2").Obj()})
	pl, err := nodename.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, podNode, node string
		want                *spec.Status
	}{
		{"no node name fits anywhere", "", "n1", nil},
		{"named node fits", "n1", "n1", nil},
		{"other node rejected", "n2", "n1", spec.NewStatus(spec.UnschedulableAndUnresolvable, nodename.ErrReason)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schedtest.RunFilter(t, pl, spectest.MakePod().Name("p").Node(tc.podNode).Obj(), snap, tc.node)
			schedtest.AssertStatus(t, got, tc.want)
		})
	}
	if _, err := nodename.Plugin().New(map[string]string{"x": "1"}, nil); err == nil {
		t.Errorf("unknown arg accepted")
	}
}
