package scheduler

import (
	"context"

	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/spec"
)

// Target is the scheduler under test in one run of the suite.
type Target struct {
	// Name is how reports name the target, e.g. "default-scheduler@memory".
	Name string
	// Config returns a client config for the API server the scheduler
	// watches. It is called before each spec, so it may start the API
	// server and the scheduler on first use; it must return the same
	// server every time.
	Config func(ctx context.Context) (*rest.Config, error)
	// SchedulerName is the spec.schedulerName the scheduler serves; every
	// pod of the suite asks for it.
	SchedulerName string
	// Claims are the capabilities the scheduler claims; nil claims all of
	// them. The specs of unclaimed capabilities are skipped.
	Claims spec.Capabilities
}

// Capability labels of the suite; every spec carries exactly one.
const (
	// CapResources: never overcommits cpu, memory, pods or an extended
	// resource; init containers and pod overhead count.
	CapResources spec.Capability = "scheduler:resources"
	// CapNodeName: pods created with spec.nodeName are left where they are
	// and their requests count on that node.
	CapNodeName spec.Capability = "scheduler:node-name"
	// CapNodeSelector: spec.nodeSelector is obeyed.
	CapNodeSelector spec.Capability = "scheduler:node-selector"
	// CapNodeAffinity: required node affinity (In, NotIn, Exists) is obeyed.
	CapNodeAffinity spec.Capability = "scheduler:node-affinity"
	// CapTaints: NoSchedule and NoExecute taints keep intolerant pods off;
	// tolerations let pods on.
	CapTaints spec.Capability = "scheduler:taints"
	// CapUnschedulableNode: no pod goes to a node with spec.unschedulable.
	CapUnschedulableNode spec.Capability = "scheduler:unschedulable-node"
	// CapHostPorts: no two pods share a host port and protocol on a node.
	CapHostPorts spec.Capability = "scheduler:host-ports"
	// CapTopologySpread: with whenUnsatisfiable DoNotSchedule, the final
	// skew across the topology domains is within maxSkew.
	CapTopologySpread spec.Capability = "scheduler:topology-spread"
	// CapPodAffinity: required pod affinity puts pods in the topology
	// domain of the pods they select.
	CapPodAffinity spec.Capability = "scheduler:pod-affinity"
	// CapPodAntiAffinity: required pod anti-affinity keeps pods out of the
	// topology domains of the pods they select.
	CapPodAntiAffinity spec.Capability = "scheduler:pod-anti-affinity"
	// CapPriority: when room appears for some of the pending pods, the
	// higher-priority ones get it.
	CapPriority spec.Capability = "scheduler:priority"
	// CapPreemption: a pod that fits nowhere evicts lower-priority pods,
	// as few as needed, and never a pod of higher priority.
	CapPreemption spec.Capability = "scheduler:preemption"
	// CapRequeue: a pending pod is scheduled once a node becomes feasible
	// (a node added, a pod deleted), without restarting the scheduler.
	CapRequeue spec.Capability = "scheduler:requeue"
	// CapPendingStatus: a pod that fits nowhere gets PodScheduled=False
	// with a reason and a message.
	CapPendingStatus spec.Capability = "scheduler:pending-status"
	// CapBurst: 1 000 pods created at once are all bound, none overcommits.
	CapBurst spec.Capability = "scheduler:burst"
	// CapChurn: nodes and pods deleted while the scheduler works; no pod
	// ends up on a node that no longer exists or overcommitted, and every
	// pod that can be placed is.
	CapChurn spec.Capability = "scheduler:churn"
)

// Capabilities lists every capability label of the suite, in report order.
func Capabilities() []spec.Capability {
	return []spec.Capability{CapResources, CapNodeName, CapNodeSelector, CapNodeAffinity, CapTaints,
		CapUnschedulableNode, CapHostPorts, CapTopologySpread, CapPodAffinity, CapPodAntiAffinity,
		CapPriority, CapPreemption, CapRequeue, CapPendingStatus, CapBurst, CapChurn}
}
