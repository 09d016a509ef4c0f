package node

import (
	"context"

	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/spec"
)

// Target is the node under test in one run of the suite.
type Target struct {
	// Name is how reports name the target, e.g. "process".
	Name string
	// Config returns a client config for the API server the node is
	// registered with. It is called before each spec, so it may start the
	// API server and the kubelet on first use; it must return the same
	// server every time.
	Config func(ctx context.Context) (*rest.Config, error)
	// NodeName is the name of the Node the kubelet under test registers;
	// every pod of the suite is bound to it.
	NodeName string
	// Claims are the capabilities the node claims; nil claims all of
	// them. The specs of unclaimed capabilities are skipped.
	Claims spec.Capabilities
}

// Capability labels of the suite; every spec carries exactly one.
const (
	// CapRegistration: the Node exists with the well-known labels
	// (hostname, os, arch), Ready=True and a capacity of cpu, memory and
	// pods.
	CapRegistration spec.Capability = "node:registration"
	// CapHeartbeat: the Node's Lease in kube-node-lease is held by the node
	// and renewed within upstream's bounds (every 10 s, for 40 s).
	CapHeartbeat spec.Capability = "node:heartbeat"
	// CapLifecycle: a bound pod becomes Running with a pod IP; deleted, it
	// is gone from the API within its grace period.
	CapLifecycle spec.Capability = "node:lifecycle"
	// CapRestartPolicy: restartPolicy Never, OnFailure and Always decide
	// the pod's phase and whether exited containers restart.
	CapRestartPolicy spec.Capability = "node:restart-policy"
	// CapCrashLoopBackOff: a container that keeps exiting waits with reason
	// CrashLoopBackOff, and the intervals between restarts grow.
	CapCrashLoopBackOff spec.Capability = "node:crashloop-backoff"
	// CapInitContainers: init containers run to completion one after the
	// other before the app containers; a failed one under restartPolicy
	// Never fails the pod.
	CapInitContainers spec.Capability = "node:init-containers"
	// CapProbes: a failing readiness probe keeps the container and the pod
	// not Ready; a failing liveness probe restarts the container.
	CapProbes spec.Capability = "node:probes"
	// CapStatus: containerStatuses carry containerID, image, imageID,
	// started, ready, restartCount and, after an exit, lastState with the
	// exit code and reason.
	CapStatus spec.Capability = "node:status"
)

// Capabilities lists every capability label of the suite, in report order.
func Capabilities() spec.Capabilities {
	return spec.Capabilities{CapRegistration, CapHeartbeat, CapLifecycle, CapRestartPolicy,
		CapCrashLoopBackOff, CapInitContainers, CapProbes, CapStatus}
}
