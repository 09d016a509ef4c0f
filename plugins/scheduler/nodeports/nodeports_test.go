package nodeports_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeports"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestFilter(t *testing.T) {
	existing := spectest.MakePod().Name("old").Node("n1").HostPort(corev1.ProtocolTCP, "10.0.0.1", 8080).HostPort(corev1.ProtocolUDP, "", 53).Obj()
	snap := spectest.Snapshot([]*corev1.Node{spectest.MakeNode().Name("n1").Obj()}, existing)
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
		{"no host ports", spectest.MakePod().Name("p").Obj(), nil},
		{"free port", spectest.MakePod().Name("p").HostPort(corev1.ProtocolTCP, "", 9090).Obj(), nil},
		{"same ip and port", spectest.MakePod().Name("p").HostPort(corev1.ProtocolTCP, "10.0.0.1", 8080).Obj(), busy},
		{"wildcard ip conflicts with a specific one", spectest.MakePod().Name("p").HostPort(corev1.ProtocolTCP, "", 8080).Obj(), busy},
		{"other ip same port", spectest.MakePod().Name("p").HostPort(corev1.ProtocolTCP, "10.0.0.2", 8080).Obj(), nil},
		{"other protocol", spectest.MakePod().Name("p").HostPort(corev1.ProtocolUDP, "10.0.0.1", 8080).Obj(), nil},
		{"specific ip conflicts with a wildcard one", spectest.MakePod().Name("p").HostPort(corev1.ProtocolUDP, "10.0.0.9", 53).Obj(), busy},
		{"port that only shares a suffix", spectest.MakePod().Name("p").HostPort(corev1.ProtocolTCP, "", 80).Obj(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schedtest.AssertStatus(t, schedtest.RunFilter(t, pl, tc.pod, snap, "n1"), tc.want)
		})
	}
}
