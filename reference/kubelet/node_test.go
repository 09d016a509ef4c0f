package kubelet

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func nodeCondition(st corev1.NodeStatus, t corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func TestComputeNodeStatus(t *testing.T) {
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourcePods: resource.MustParse("110")}
	facts := NodeFacts{Capacity: capacity, Allocatable: capacity, Now: t0, KubeletPort: 10250,
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}}}

	st := ComputeNodeStatus(corev1.NodeStatus{}, facts)
	ready := nodeCondition(st, corev1.NodeReady)
	if ready.Status != corev1.ConditionTrue || ready.Reason != ReasonKubeletReady || !ready.LastHeartbeatTime.Time.Equal(t0) {
		t.Errorf("Ready %+v", ready)
	}
	for _, c := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		if nodeCondition(st, c).Status != corev1.ConditionFalse {
			t.Errorf("%s is not False", c)
		}
	}
	if st.Capacity.Pods().Value() != 110 || st.Addresses[0].Address != "192.0.2.1" {
		t.Errorf("capacity %v addresses %v", st.Capacity, st.Addresses)
	}
	if st.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("daemonEndpoints %+v, want the kubelet API's port", st.DaemonEndpoints)
	}

	// A later heartbeat keeps the transition time; a runtime problem makes
	// it NotReady with the problem as message.
	facts.Now = t0.Add(time.Minute)
	later := ComputeNodeStatus(st, facts)
	if r := nodeCondition(later, corev1.NodeReady); !r.LastTransitionTime.Time.Equal(t0) || !r.LastHeartbeatTime.Time.Equal(facts.Now) {
		t.Errorf("later Ready %+v", r)
	}
	facts.RuntimeErr = "container runtime network not ready: NetworkReady=false"
	down := ComputeNodeStatus(later, facts)
	if r := nodeCondition(down, corev1.NodeReady); r.Status != corev1.ConditionFalse || r.Reason != ReasonKubeletNotReady ||
		r.Message != facts.RuntimeErr || !r.LastTransitionTime.Time.Equal(facts.Now) {
		t.Errorf("NotReady %+v", r)
	}
}

func TestNodeStatusNeedsPost(t *testing.T) {
	facts := NodeFacts{Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}, Now: t0}
	posted := ComputeNodeStatus(corev1.NodeStatus{}, facts)
	facts.Now = t0.Add(10 * time.Second)
	same := ComputeNodeStatus(posted, facts)
	if NodeStatusNeedsPost(posted, same, t0, facts.Now, DefaultNodeStatusReportFrequency) {
		t.Error("an unchanged status was posted before the report frequency")
	}
	if !NodeStatusNeedsPost(posted, same, t0, t0.Add(DefaultNodeStatusReportFrequency), DefaultNodeStatusReportFrequency) {
		t.Error("an unchanged status was not posted at the report frequency")
	}
	facts.RuntimeErr = "down"
	changed := ComputeNodeStatus(posted, facts)
	if !NodeStatusNeedsPost(posted, changed, t0, facts.Now, DefaultNodeStatusReportFrequency) {
		t.Error("a changed status was not posted at once")
	}
}

func TestMemTotal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(p, []byte("MemFree: 1 kB\nMemTotal:       16384 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := memTotal(p); err != nil || n != 16384*1024 {
		t.Errorf("memTotal = %d, %v", n, err)
	}
	if err := os.WriteFile(p, []byte("MemFree: 1 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := memTotal(p); err == nil {
		t.Error("no MemTotal line but no error")
	}
}

func TestNodeLabels(t *testing.T) {
	l := NodeLabels("h1")
	if l[corev1.LabelHostname] != "h1" || l[corev1.LabelOSStable] == "" || l[corev1.LabelArchStable] == "" {
		t.Errorf("labels %v", l)
	}
}
