package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAdmit(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: resource.MustParse("3")}},
	}
	req := func(cpu, mem string) *corev1.Pod {
		p := testPod("a")
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
		return p
	}
	port := func(p *corev1.Pod, hostIP string, hostPort int32, proto corev1.Protocol) *corev1.Pod {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 80, HostPort: hostPort, HostIP: hostIP, Protocol: proto})
		return p
	}
	selector := func(k, v string) *corev1.Pod {
		p := testPod("a")
		p.Spec.NodeSelector = map[string]string{k: v}
		return p
	}
	withInitReq := func(cpu string) *corev1.Pod {
		p := req("100m", "1Mi")
		p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}
		return p
	}
	tests := []struct {
		name   string
		pod    *corev1.Pod
		active []*corev1.Pod
		reason string
	}{
		{"fits", req("1", "512Mi"), []*corev1.Pod{req("1", "512Mi")}, ""},
		{"cpu does not fit", req("1500m", "1Mi"), []*corev1.Pod{req("1", "1Mi")}, "OutOfcpu"},
		{"memory does not fit", req("100m", "600Mi"), []*corev1.Pod{req("100m", "500Mi")}, "OutOfmemory"},
		{"an init container's larger request counts", withInitReq("3"), nil, "OutOfcpu"},
		{"one pod too many", testPod("a"), []*corev1.Pod{testPod("b"), testPod("c"), testPod("d")}, "OutOfpods"},
		{"nodeSelector matches", selector("zone", "a"), nil, ""},
		{"nodeSelector does not match", selector("zone", "b"), nil, ReasonNodeAffinity},
		{"host port taken", port(testPod("a"), "", 8080, ""), []*corev1.Pod{port(testPod("b"), "", 8080, corev1.ProtocolTCP)}, ReasonNodePorts},
		{"host port taken on one address, wanted on all", port(testPod("a"), "0.0.0.0", 8080, ""), []*corev1.Pod{port(testPod("b"), "10.0.0.1", 8080, "")}, ReasonNodePorts},
		{"same port on other addresses", port(testPod("a"), "10.0.0.2", 8080, ""), []*corev1.Pod{port(testPod("b"), "10.0.0.1", 8080, "")}, ""},
		{"same port, other protocol", port(testPod("a"), "", 53, corev1.ProtocolUDP), []*corev1.Pod{port(testPod("b"), "", 53, corev1.ProtocolTCP)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Admit(tc.pod, tc.active, node)
			if a.Admit != (tc.reason == "") || a.Reason != tc.reason || (!a.Admit && a.Message == "") {
				t.Errorf("Admit = %+v, want reason %q", a, tc.reason)
			}
		})
	}
}
