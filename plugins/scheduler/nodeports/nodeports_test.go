package nodeports_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeports"
	"github.com/kubelab/kubelab/spec"
)

func TestFilter(t *testing.T) {
	existing := schedtest.MakePod("old").Node("n1").HostPort(corev1.ProtocolTCP, "10.0.0.1", 8080).HostPort(corev1.ProtocolUDP, "", 53).Obj()
	snap := schedtest.Snapshot([]*corev1.Node{schedtest.MakeNode("n1").Obj()}, existing)
	pl, err := nodeports.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	busy := spec.NewStatus(spec.Unschedulable, nodeports.ErrReason)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want *spec.Status
	}{
		{"no host ports", schedtest.MakePod("p").Obj(), nil},
		{"free port", schedtest.MakePod("p").HostPort(corev1.ProtocolTCP, "", 9090).Obj(), nil},
		{"same ip and port", schedtest.MakePod("p").HostPort(corev1.ProtocolTCP, "10.0.0.1", 8080).Obj(), busy},
		{"wildcard ip conflicts with a specific one", schedtest.MakePod("p").HostPort(corev1.ProtocolTCP, "", 8080).Obj(), busy},
		{"other ip same port", schedtest.MakePod("p").HostPort(corev1.ProtocolTCP, "10.0.0.2", 8080).Obj(), nil},
		{"other protocol", schedtest.MakePod("p").HostPort(corev1.ProtocolUDP, "10.0.0.1", 8080).Obj(), nil},
		{"specific ip conflicts with a wildcard one", schedtest.MakePod("p").HostPort(corev1.ProtocolUDP, "10.0.0.9", 53).Obj(), busy},
		{"port that only shares a suffix", schedtest.MakePod("p").HostPort(corev1.ProtocolTCP, "", 80).Obj(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(pl, tc.pod, snap, "n1"), tc.want)
		})
	}
}
