package kubelet

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Admission reasons, upstream's (the reason of a rejected pod's status).
const (
	// ReasonNodeAffinity: the pod's nodeSelector or required node affinity
	// does not match the node.
	ReasonNodeAffinity = "NodeAffinity"
	// ReasonNodePorts: a host port is already taken on the node.
	ReasonNodePorts = "NodePorts"
	// ReasonOutOfPrefix starts the reasons of resources that do not fit:
	// OutOfcpu, OutOfmemory, OutOfpods, OutOfephemeral-storage.
	ReasonOutOfPrefix = "OutOf"
)

// Admission is the verdict on a pod the node is asked to run.
type Admission struct {
	// Admit is true when the pod may run.
	Admit bool
	// Reason and Message explain a rejection, as the rejected pod's status
	// shows them.
	Reason, Message string
}

// Admit decides whether node can run pod next to active, the pods it
// already runs (not terminal, admitted before), as upstream's kubelet
// admission does with the scheduler's general predicates: the pod's
// nodeSelector and required node affinity must match the node's labels;
// its host ports must be free; its requests (as the scheduler counts them:
// the larger of the app containers' sum and each init container, plus
// overhead) plus the active pods' must fit the node's allocatable, and so
// must one more pod.
func Admit(pod *corev1.Pod, active []*corev1.Pod, node *corev1.Node) Admission {
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !ok {
		return Admission{Reason: ReasonNodeAffinity, Message: "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"}
	}
	var used []hostPort
	for _, p := range active {
		used = append(used, hostPorts(p)...)
	}
	for _, hp := range hostPorts(pod) {
		for _, u := range used {
			if hp.conflicts(u) {
				return Admission{Reason: ReasonNodePorts, Message: "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"}
			}
		}
	}
	alloc := node.Status.Allocatable
	if q, ok := alloc[corev1.ResourcePods]; ok && int64(len(active)+1) > q.Value() {
		return Admission{Reason: ReasonOutOfPrefix + "pods", Message: fmt.Sprintf(
			"Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", len(active), q.Value())}
	}
	want := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	sum := corev1.ResourceList{}
	for _, p := range active {
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			cur := sum[name]
			cur.Add(q)
			sum[name] = cur
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, string(name))
	}
	sort.Strings(names)
	for _, n := range names {
		name := corev1.ResourceName(n)
		req := want[name]
		capq, ok := alloc[name]
		if req.IsZero() || !ok {
			continue
		}
		usedq := sum[name]
		total := usedq.DeepCopy()
		total.Add(req)
		if total.Cmp(capq) > 0 {
			if name == corev1.ResourceCPU {
				return Admission{Reason: ReasonOutOfPrefix + string(name), Message: fmt.Sprintf(
					"Pod was rejected: Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", name, req.MilliValue(), usedq.MilliValue(), capq.MilliValue())}
			}
			return Admission{Reason: ReasonOutOfPrefix + string(name), Message: fmt.Sprintf(
				"Pod was rejected: Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", name, req.Value(), usedq.Value(), capq.Value())}
		}
	}
	return Admission{Admit: true}
}

// hostPort is one host port a pod asks for; IP "" is every address.
type hostPort struct {
	proto corev1.Protocol
	ip    string
	port  int32
}

// conflicts reports whether two host ports cannot both be bound: same
// protocol and port, and the same address or a wildcard on either side.
func (a hostPort) conflicts(b hostPort) bool {
	return a.proto == b.proto && a.port == b.port && (a.ip == "" || b.ip == "" || a.ip == b.ip)
}

func hostPorts(p *corev1.Pod) []hostPort {
	var out []hostPort
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			hp := hostPort{proto: port.Protocol, ip: port.HostIP, port: port.HostPort}
			if hp.proto == "" {
				hp.proto = corev1.ProtocolTCP
			}
			if hp.ip == "0.0.0.0" || hp.ip == "::" {
				hp.ip = ""
			}
			out = append(out, hp)
		}
	}
	return out
}
