package spec_test

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/spec"
)

func podWith(uid, cpu, initCPU string, hostPort int32) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: uid, UID: k8stypes.UID("uid-" + uid)}}
	c := corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}
	if hostPort > 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: hostPort}}
	}
	p.Spec.Containers = []corev1.Container{c}
	if initCPU != "" {
		p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(initCPU)}}}}
	}
	return p
}

func TestNodeInfoCountsInitContainersPortsAndRemoval(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}
	a := podWith("a", "500m", "2", 8080)
	b := podWith("b", "1", "", 0)
	ni := spec.NewNodeInfo(node, a, b)
	if got := ni.Requested[corev1.ResourceCPU]; got.Cmp(resource.MustParse("3")) != 0 {
		t.Fatalf("requested cpu = %s, want 3 (init container 2 > 500m, plus 1)", got.String())
	}
	if got := ni.Requested[corev1.ResourcePods]; got.Value() != 2 {
		t.Fatalf("requested pods = %d, want 2", got.Value())
	}
	if !ni.UsedPorts["TCP/0.0.0.0/8080"] {
		t.Fatalf("UsedPorts = %v, want TCP/0.0.0.0/8080", ni.UsedPorts)
	}
	if free := ni.Free(corev1.ResourceCPU); free.Cmp(resource.MustParse("1")) != 0 {
		t.Fatalf("free cpu = %s, want 1", free.String())
	}
	c := ni.Clone()
	if err := c.RemovePod(a); err != nil {
		t.Fatal(err)
	}
	if c.UsedPorts["TCP/0.0.0.0/8080"] || len(c.Pods) != 1 {
		t.Fatalf("after RemovePod: ports %v pods %d", c.UsedPorts, len(c.Pods))
	}
	if got := c.Requested[corev1.ResourceCPU]; got.Cmp(resource.MustParse("1")) != 0 {
		t.Fatalf("clone cpu = %s, want 1", got.String())
	}
	if got := ni.Requested[corev1.ResourceCPU]; got.Cmp(resource.MustParse("3")) != 0 || len(ni.Pods) != 2 {
		t.Fatalf("original changed by clone's RemovePod: cpu %s pods %d", got.String(), len(ni.Pods))
	}
	if err := c.RemovePod(a); !errors.Is(err, spec.ErrNotFound) {
		t.Fatalf("second RemovePod = %v, want ErrNotFound", err)
	}
	snap := spec.NewSnapshot([]*spec.NodeInfo{ni})
	if got, err := snap.Get("n1"); err != nil || got != ni {
		t.Fatalf("Get(n1) = %v, %v", got, err)
	}
	if _, err := snap.Get("nope"); !errors.Is(err, spec.ErrNotFound) {
		t.Fatalf("Get(nope) = %v, want ErrNotFound", err)
	}
}

func TestNodeInfoNonZeroRequested(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	a := podWith("a", "500m", "", 0)
	empty := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e", UID: "uid-e"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	ni := spec.NewNodeInfo(node, a, empty)
	if got := ni.NonZeroRequested[corev1.ResourceCPU]; got.MilliValue() != 600 {
		t.Errorf("non-zero cpu = %dm, want 600m (500m + the 100m default)", got.MilliValue())
	}
	if got := ni.NonZeroRequested[corev1.ResourceMemory]; got.Value() != 2*spec.DefaultMemoryRequest {
		t.Errorf("non-zero memory = %d, want two defaults", got.Value())
	}
	if got := ni.Requested[corev1.ResourceCPU]; got.MilliValue() != 500 {
		t.Errorf("requested cpu = %dm, want 500m (defaults are for scoring only)", got.MilliValue())
	}
	c := ni.Clone()
	if err := c.RemovePod(empty); err != nil {
		t.Fatal(err)
	}
	if got := c.NonZeroRequested[corev1.ResourceCPU]; got.MilliValue() != 500 {
		t.Errorf("after removal non-zero cpu = %dm, want 500m", got.MilliValue())
	}
	if got := ni.NonZeroRequested[corev1.ResourceCPU]; got.MilliValue() != 600 {
		t.Errorf("clone shares NonZeroRequested with the original")
	}
}

func TestNodeInfoCountsMirrorTheResourceLists(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}}}
	a := podWith("a", "500m", "2", 0)
	empty := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e", UID: "uid-e"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	ni := spec.NewNodeInfo(node, a, empty)
	want := spec.NodeCounts{Valid: true, AllocatableMilliCPU: 4000, AllocatableMemory: 8 << 30, AllocatablePods: 110,
		RequestedMilliCPU: 2000, NonZeroMilliCPU: 2100, NonZeroMemory: 2 * spec.DefaultMemoryRequest}
	if ni.Counts != want {
		t.Fatalf("Counts = %+v\nwant     %+v", ni.Counts, want)
	}
	c := ni.Clone()
	if err := c.RemovePod(a); err != nil {
		t.Fatal(err)
	}
	if c.Counts.RequestedMilliCPU != 0 || c.Counts.NonZeroMilliCPU != 100 || ni.Counts.RequestedMilliCPU != 2000 {
		t.Errorf("after removal: clone %+v, original %+v", c.Counts, ni.Counts)
	}
	if (&spec.NodeInfo{}).Counts.Valid {
		t.Errorf("a hand-built NodeInfo claims valid counts")
	}
}

func TestNodeInfoTracksPodsWithAffinity(t *testing.T) {
	plain := podWith("plain", "1", "", 0)
	aff := podWith("aff", "1", "", 0)
	aff.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{}}
	anti := podWith("anti", "1", "", 0)
	anti.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "zone"}}}}
	ni := spec.NewNodeInfo(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, plain, aff, anti)
	if len(ni.PodsWithAffinity) != 2 || len(ni.PodsWithRequiredAntiAffinity) != 1 || ni.PodsWithRequiredAntiAffinity[0] != anti {
		t.Fatalf("with affinity %d, with required anti-affinity %d; want 2 and 1", len(ni.PodsWithAffinity), len(ni.PodsWithRequiredAntiAffinity))
	}
	c := ni.Clone()
	if err := c.RemovePod(anti); err != nil {
		t.Fatal(err)
	}
	if len(c.PodsWithAffinity) != 1 || len(c.PodsWithRequiredAntiAffinity) != 0 || len(ni.PodsWithRequiredAntiAffinity) != 1 {
		t.Errorf("after removing from the clone: clone %d/%d, original %d", len(c.PodsWithAffinity), len(c.PodsWithRequiredAntiAffinity), len(ni.PodsWithRequiredAntiAffinity))
	}
}
