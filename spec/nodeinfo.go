package spec

import (
	"fmt"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// PodRequests returns what a pod asks a node for, as the kube-scheduler
// counts it: the larger of the sum of its containers' requests and its
// largest init container's request (sidecars included), plus the pod's
// overhead. A pod asks for one "pods" slot.
func PodRequests(pod *corev1.Pod) corev1.ResourceList {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	req[corev1.ResourcePods] = *resource.NewQuantity(1, resource.DecimalSI)
	return req
}

// Defaults the kube-scheduler's scoring assumes for a container that
// requests no cpu or memory (its DefaultMilliCPURequest and
// DefaultMemoryRequest).
const (
	DefaultMilliCPURequest int64 = 100
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// PodNonZeroRequests returns pod's cpu and memory requests as the
// kube-scheduler's scoring counts them: PodRequests, except that a container
// requesting no cpu (memory) counts as DefaultMilliCPURequest
// (DefaultMemoryRequest).
func PodNonZeroRequests(pod *corev1.Pod) corev1.ResourceList {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(DefaultMilliCPURequest, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(DefaultMemoryRequest, resource.BinarySI),
		},
	})
	return corev1.ResourceList{
		corev1.ResourceCPU:    req[corev1.ResourceCPU],
		corev1.ResourceMemory: req[corev1.ResourceMemory],
	}
}

// PodHostPorts returns the host ports pod uses, as "protocol/hostIP/port"
// strings (hostIP "0.0.0.0" when unset, protocol "TCP" when unset).
func PodHostPorts(pod *corev1.Pod) []string {
	var out []string
	add := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort <= 0 {
					continue
				}
				out = append(out, HostPortKey(p.Protocol, p.HostIP, p.HostPort))
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return out
}

// HostPortKey formats one host port the way NodeInfo.UsedPorts keys it.
func HostPortKey(protocol corev1.Protocol, hostIP string, port int32) string {
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	if hostIP == "" {
		hostIP = "0.0.0.0"
	}
	return string(protocol) + "/" + hostIP + "/" + strconv.Itoa(int(port))
}

// NewNodeInfo returns the NodeInfo of node with pods assigned to it.
func NewNodeInfo(node *corev1.Node, pods ...*corev1.Pod) *NodeInfo {
	n := &NodeInfo{
		Node:        node,
		Requested:   corev1.ResourceList{},
		Allocatable: corev1.ResourceList{},
		UsedPorts:   map[string]bool{},

		NonZeroRequested: corev1.ResourceList{},
	}
	if node != nil {
		for k, v := range node.Status.Allocatable {
			n.Allocatable[k] = v.DeepCopy()
		}
	}
	n.Counts = NodeCounts{
		Valid:                       true,
		AllocatableMilliCPU:         milli(n.Allocatable, corev1.ResourceCPU),
		AllocatableMemory:           whole(n.Allocatable, corev1.ResourceMemory),
		AllocatableEphemeralStorage: whole(n.Allocatable, corev1.ResourceEphemeralStorage),
		AllocatablePods:             whole(n.Allocatable, corev1.ResourcePods),
	}
	for _, p := range pods {
		n.AddPod(p)
	}
	return n
}

func milli(l corev1.ResourceList, name corev1.ResourceName) int64 {
	if q, ok := l[name]; ok {
		return q.MilliValue()
	}
	return 0
}

func whole(l corev1.ResourceList, name corev1.ResourceName) int64 {
	if q, ok := l[name]; ok {
		return q.Value()
	}
	return 0
}

// count adds (sign 1) or subtracts (sign -1) a pod's requests to Counts.
func (n *NodeInfo) count(req, nonZero corev1.ResourceList, sign int64) {
	c := &n.Counts
	c.RequestedMilliCPU += sign * milli(req, corev1.ResourceCPU)
	c.RequestedMemory += sign * whole(req, corev1.ResourceMemory)
	c.RequestedEphemeralStorage += sign * whole(req, corev1.ResourceEphemeralStorage)
	c.NonZeroMilliCPU += sign * milli(nonZero, corev1.ResourceCPU)
	c.NonZeroMemory += sign * whole(nonZero, corev1.ResourceMemory)
}

// HasPodAffinity reports whether pod has pod affinity or anti-affinity
// terms.
func HasPodAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil)
}

// HasRequiredPodAntiAffinity reports whether pod has required pod
// anti-affinity terms.
func HasRequiredPodAntiAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
}

func withoutUID(pods []*corev1.Pod, pod *corev1.Pod) []*corev1.Pod {
	for i, p := range pods {
		if p.UID == pod.UID {
			return append(pods[:i:i], pods[i+1:]...)
		}
	}
	return pods
}

// AddPod counts pod on the node: its requests and host ports.
func (n *NodeInfo) AddPod(pod *corev1.Pod) {
	n.Pods = append(n.Pods, pod)
	if HasPodAffinity(pod) {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pod)
		if HasRequiredPodAntiAffinity(pod) {
			n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pod)
		}
	}
	req := PodRequests(pod)
	for name, q := range req {
		sum := n.Requested[name].DeepCopy()
		sum.Add(q)
		n.Requested[name] = sum
	}
	for _, k := range PodHostPorts(pod) {
		n.UsedPorts[k] = true
	}
	if n.NonZeroRequested == nil {
		n.NonZeroRequested = corev1.ResourceList{}
	}
	nonZero := PodNonZeroRequests(pod)
	for name, q := range nonZero {
		sum := n.NonZeroRequested[name].DeepCopy()
		sum.Add(q)
		n.NonZeroRequested[name] = sum
	}
	n.count(req, nonZero, 1)
}

// RemovePod uncounts the pod with pod's UID; it returns an error wrapping
// ErrNotFound when the node has no such pod.
func (n *NodeInfo) RemovePod(pod *corev1.Pod) error {
	for i, p := range n.Pods {
		if p.UID != pod.UID {
			continue
		}
		n.Pods = append(n.Pods[:i:i], n.Pods[i+1:]...)
		n.PodsWithAffinity = withoutUID(n.PodsWithAffinity, p)
		n.PodsWithRequiredAntiAffinity = withoutUID(n.PodsWithRequiredAntiAffinity, p)
		req := PodRequests(p)
		for name, q := range req {
			left := n.Requested[name].DeepCopy()
			left.Sub(q)
			n.Requested[name] = left
		}
		nonZero := PodNonZeroRequests(p)
		for name, q := range nonZero {
			left := n.NonZeroRequested[name].DeepCopy()
			left.Sub(q)
			n.NonZeroRequested[name] = left
		}
		n.count(req, nonZero, -1)
		n.UsedPorts = map[string]bool{}
		for _, rest := range n.Pods {
			for _, k := range PodHostPorts(rest) {
				n.UsedPorts[k] = true
			}
		}
		return nil
	}
	return fmt.Errorf("pod %s/%s on node %s: %w", pod.Namespace, pod.Name, n.Name(), ErrNotFound)
}

// Clone returns a copy that can be changed (AddPod, RemovePod) without
// changing n. The Node and Pod objects themselves are shared, not copied.
func (n *NodeInfo) Clone() *NodeInfo {
	c := &NodeInfo{
		Node: n.Node,
		Pods: append([]*corev1.Pod(nil), n.Pods...),

		PodsWithAffinity:             append([]*corev1.Pod(nil), n.PodsWithAffinity...),
		PodsWithRequiredAntiAffinity: append([]*corev1.Pod(nil), n.PodsWithRequiredAntiAffinity...),
		Requested:                    corev1.ResourceList{},
		Allocatable:                  corev1.ResourceList{},
		UsedPorts:                    map[string]bool{},

		NonZeroRequested: corev1.ResourceList{},
		Counts:           n.Counts,
	}
	for k, v := range n.NonZeroRequested {
		c.NonZeroRequested[k] = v.DeepCopy()
	}
	for k, v := range n.Requested {
		c.Requested[k] = v.DeepCopy()
	}
	for k, v := range n.Allocatable {
		c.Allocatable[k] = v.DeepCopy()
	}
	for k, v := range n.UsedPorts {
		c.UsedPorts[k] = v
	}
	return c
}

// Name returns the node's name ("" when Node is nil).
func (n *NodeInfo) Name() string {
	if n.Node == nil {
		return ""
	}
	return n.Node.Name
}

// listSnapshot is the Snapshot NewSnapshot returns.
type listSnapshot struct {
	nodes  []*NodeInfo
	byName map[string]*NodeInfo
}

// NewSnapshot returns a Snapshot over nodes, listed in name order.
func NewSnapshot(nodes []*NodeInfo) Snapshot {
	s := &listSnapshot{nodes: append([]*NodeInfo(nil), nodes...), byName: make(map[string]*NodeInfo, len(nodes))}
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].Name() < s.nodes[j].Name() })
	for _, n := range s.nodes {
		s.byName[n.Name()] = n
	}
	return s
}

func (s *listSnapshot) Nodes() []*NodeInfo { return s.nodes }

func (s *listSnapshot) Get(name string) (*NodeInfo, error) {
	n, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("node %q: %w", name, ErrNotFound)
	}
	return n, nil
}
