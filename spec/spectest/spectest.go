// Package spectest builds the Kubernetes objects that tests of kubelab's
// contracts need — pods, nodes, and scheduler snapshots of them — in one
// place, in the style of the kube-scheduler's pkg/scheduler/testing
// wrappers:
//
//	pod := spectest.MakePod().Name("web").Namespace("ns").Req(spectest.Res{"cpu": "500m"}).Node("n1").Obj()
//	node := spectest.MakeNode().Name("n1").Capacity(spectest.Res{"cpu": "4", "memory": "8Gi"}).Obj()
//	snap := spectest.Snapshot([]*corev1.Node{node}, pod)
//
// A wrapper is changed in place by its methods and Obj returns a copy of
// the object built so far (a shallow copy: maps and slices are shared with
// the wrapper, so build each object from its own wrapper). Quantities are
// parsed with resource.MustParse, so a malformed one panics: these are
// test helpers. Third-party plugin and conformance tests may import it; it
// imports only spec and k8s.io packages.
package spectest

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/spec"
)

// Res are resource quantities by name, as strings ("500m", "1Gi").
type Res map[corev1.ResourceName]string

// list parses r into a ResourceList.
func (r Res) list() corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range r {
		out[k] = resource.MustParse(v)
	}
	return out
}

// NodeWrapper builds a Node.
type NodeWrapper struct{ corev1.Node }

// MakeNode returns a node wrapper whose node can hold 110 pods (the
// kubelet's default maxPods) and nothing else.
func MakeNode() *NodeWrapper {
	n := &NodeWrapper{corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}}}}
	return n.Capacity(Res{corev1.ResourcePods: "110"})
}

// Name sets the node's name and its kubernetes.io/hostname label, as the
// kubelet does.
func (n *NodeWrapper) Name(name string) *NodeWrapper {
	n.Node.Name = name
	n.Labels[corev1.LabelHostname] = name
	return n
}

// UID sets the node's UID.
func (n *NodeWrapper) UID(uid string) *NodeWrapper { n.Node.UID = types.UID(uid); return n }

// Label sets a label.
func (n *NodeWrapper) Label(k, v string) *NodeWrapper { n.Labels[k] = v; return n }

// Capacity sets these quantities in both status.capacity and
// status.allocatable, keeping the others.
func (n *NodeWrapper) Capacity(r Res) *NodeWrapper {
	if n.Status.Capacity == nil {
		n.Status.Capacity = corev1.ResourceList{}
	}
	if n.Status.Allocatable == nil {
		n.Status.Allocatable = corev1.ResourceList{}
	}
	for k, q := range r.list() {
		n.Status.Capacity[k] = q
		n.Status.Allocatable[k] = q.DeepCopy()
	}
	return n
}

// Taint adds a taint.
func (n *NodeWrapper) Taint(k, v string, e corev1.TaintEffect) *NodeWrapper {
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: e})
	return n
}

// Unschedulable cordons the node (spec.unschedulable).
func (n *NodeWrapper) Unschedulable() *NodeWrapper { n.Spec.Unschedulable = true; return n }

// Images sets the images the node reports (status.images).
func (n *NodeWrapper) Images(imgs ...corev1.ContainerImage) *NodeWrapper {
	n.Status.Images = append(n.Status.Images, imgs...)
	return n
}

// Obj returns the node.
func (n *NodeWrapper) Obj() *corev1.Node { c := n.Node; return &c }

// PodWrapper builds a Pod.
type PodWrapper struct{ corev1.Pod }

// MakePod returns a pod wrapper: namespace "default", one container "c"
// requesting nothing.
func MakePod() *PodWrapper {
	p := &PodWrapper{corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Labels: map[string]string{}}}}
	p.Spec.Containers = []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}}
	return p
}

// Name sets the pod's name; Obj gives a pod without a UID the UID
// "uid-NAME", so that pods built with different names are different pods.
func (p *PodWrapper) Name(name string) *PodWrapper { p.Pod.Name = name; return p }

// UID sets the pod's UID.
func (p *PodWrapper) UID(uid string) *PodWrapper { p.Pod.UID = types.UID(uid); return p }

// Namespace sets the namespace.
func (p *PodWrapper) Namespace(ns string) *PodWrapper { p.Pod.Namespace = ns; return p }

// Label sets a label.
func (p *PodWrapper) Label(k, v string) *PodWrapper { p.Labels[k] = v; return p }

// Annotation sets an annotation.
func (p *PodWrapper) Annotation(k, v string) *PodWrapper {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[k] = v
	return p
}

// Req adds requests to the first container.
func (p *PodWrapper) Req(r Res) *PodWrapper {
	for k, q := range r.list() {
		p.Spec.Containers[0].Resources.Requests[k] = q
	}
	return p
}

// Container adds a container with this image and these requests.
func (p *PodWrapper) Container(name, image string, r Res) *PodWrapper {
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name, Image: image,
		Resources: corev1.ResourceRequirements{Requests: r.list()}})
	return p
}

// Image sets the first container's image.
func (p *PodWrapper) Image(image string) *PodWrapper { p.Spec.Containers[0].Image = image; return p }

// InitReq adds an init container with these requests.
func (p *PodWrapper) InitReq(r Res) *PodWrapper {
	p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "init",
		Resources: corev1.ResourceRequirements{Requests: r.list()}})
	return p
}

// Overhead sets the pod overhead.
func (p *PodWrapper) Overhead(r Res) *PodWrapper { p.Spec.Overhead = r.list(); return p }

// HostPort adds a host port (and the same container port) to the first
// container.
func (p *PodWrapper) HostPort(proto corev1.Protocol, ip string, port int32) *PodWrapper {
	p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto})
	return p
}

// Node sets spec.nodeName.
func (p *PodWrapper) Node(n string) *PodWrapper { p.Spec.NodeName = n; return p }

// NominatedNode sets status.nominatedNodeName.
func (p *PodWrapper) NominatedNode(n string) *PodWrapper { p.Status.NominatedNodeName = n; return p }

// SchedulerName sets spec.schedulerName.
func (p *PodWrapper) SchedulerName(n string) *PodWrapper { p.Spec.SchedulerName = n; return p }

// Priority sets spec.priority.
func (p *PodWrapper) Priority(v int32) *PodWrapper { p.Spec.Priority = &v; return p }

// PreemptionPolicy sets spec.preemptionPolicy.
func (p *PodWrapper) PreemptionPolicy(v corev1.PreemptionPolicy) *PodWrapper {
	p.Spec.PreemptionPolicy = &v
	return p
}

// Created sets the creation timestamp to the Unix second sec.
func (p *PodWrapper) Created(sec int64) *PodWrapper {
	p.CreationTimestamp = metav1.NewTime(time.Unix(sec, 0))
	return p
}

// NodeSelector sets a nodeSelector entry.
func (p *PodWrapper) NodeSelector(k, v string) *PodWrapper {
	if p.Spec.NodeSelector == nil {
		p.Spec.NodeSelector = map[string]string{}
	}
	p.Spec.NodeSelector[k] = v
	return p
}

// Toleration adds a toleration.
func (p *PodWrapper) Toleration(k string, op corev1.TolerationOperator, v string, e corev1.TaintEffect) *PodWrapper {
	p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: k, Operator: op, Value: v, Effect: e})
	return p
}

// SchedulingGate adds a scheduling gate.
func (p *PodWrapper) SchedulingGate(name string) *PodWrapper {
	p.Spec.SchedulingGates = append(p.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: name})
	return p
}

// Affinity returns the pod's affinity, creating it, for a test to fill in
// (it ends the chain).
func (p *PodWrapper) Affinity() *corev1.Affinity {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	return p.Spec.Affinity
}

// Spread adds a topology spread constraint selecting label k=v.
func (p *PodWrapper) Spread(maxSkew int32, key string, when corev1.UnsatisfiableConstraintAction, k, v string) *PodWrapper {
	p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}},
	})
	return p
}

// Obj returns the pod (with the UID "uid-NAME" when none was set).
func (p *PodWrapper) Obj() *corev1.Pod {
	c := p.Pod
	if c.UID == "" {
		c.UID = types.UID("uid-" + c.Name)
	}
	return &c
}

// Term is a pod affinity term selecting label k=v over topology key.
func Term(key, k, v string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}}
}

// Snapshot returns a spec.Snapshot of nodes, each pod counted on the node
// its spec.nodeName names (pods naming no listed node are left out).
func Snapshot(nodes []*corev1.Node, pods ...*corev1.Pod) spec.Snapshot {
	infos := make([]*spec.NodeInfo, 0, len(nodes))
	byName := map[string]*spec.NodeInfo{}
	for _, n := range nodes {
		ni := spec.NewNodeInfo(n)
		infos = append(infos, ni)
		byName[n.Name] = ni
	}
	for _, p := range pods {
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(p)
		}
	}
	return spec.NewSnapshot(infos)
}
