package kubelet

import (
	"sort"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerState is a container's state as the runtime reports it.
type ContainerState int

// Container states, CRI's.
const (
	// StateUnknown: the runtime could not say.
	StateUnknown ContainerState = iota
	// StateCreated: created, never started.
	StateCreated
	// StateRunning: running.
	StateRunning
	// StateExited: ran and exited.
	StateExited
)

// String names the state.
func (s ContainerState) String() string {
	return [...]string{"unknown", "created", "running", "exited"}[s]
}

// ObservedSandbox is one sandbox of a pod, as the runtime reports it.
type ObservedSandbox struct {
	// ID is the runtime's sandbox ID.
	ID string
	// Attempt is the sandbox's metadata attempt.
	Attempt uint32
	// Ready is true while the sandbox is SANDBOX_READY.
	Ready bool
	// CreatedAt is when the runtime created it.
	CreatedAt time.Time
	// IPs are the pod's IPs in the sandbox, primary first (may be empty,
	// e.g. with host networking).
	IPs []string
}

// ObservedContainer is one container instance of a pod, as the runtime
// reports it.
type ObservedContainer struct {
	// ID is the runtime's container ID.
	ID string
	// SandboxID is the ID of the sandbox the container belongs to.
	SandboxID string
	// Name is the container's name in the pod spec.
	Name string
	// Attempt is the container's metadata attempt: 0 for the first
	// instance, one more for each restart.
	Attempt uint32
	// State is the runtime's state.
	State ContainerState
	// CreatedAt, StartedAt and FinishedAt are the runtime's timestamps
	// (zero when not reached).
	CreatedAt, StartedAt, FinishedAt time.Time
	// ExitCode is the exit code once exited.
	ExitCode int32
	// Reason and Message are the runtime's explanation of the exit
	// (e.g. "OOMKilled", "Completed", "Error").
	Reason, Message string
	// Image is the image as the pod spec names it; ImageRef the image ID.
	Image, ImageRef string
}

// ObservedPod is everything the runtime reports about one pod.
type ObservedPod struct {
	// Sandboxes are the pod's sandboxes, newest first.
	Sandboxes []ObservedSandbox
	// Containers are the pod's container instances, newest first.
	Containers []ObservedContainer
}

// Sandbox returns the newest sandbox, or nil.
func (o ObservedPod) Sandbox() *ObservedSandbox {
	if len(o.Sandboxes) == 0 {
		return nil
	}
	return &o.Sandboxes[0]
}

// Latest returns the newest instance of the container called name, or nil.
func (o ObservedPod) Latest(name string) *ObservedContainer {
	for i := range o.Containers {
		if o.Containers[i].Name == name {
			return &o.Containers[i]
		}
	}
	return nil
}

// LatestIn returns the newest instance of name in the sandbox sandboxID,
// or nil.
func (o ObservedPod) LatestIn(sandboxID, name string) *ObservedContainer {
	for i := range o.Containers {
		if o.Containers[i].Name == name && o.Containers[i].SandboxID == sandboxID {
			return &o.Containers[i]
		}
	}
	return nil
}

// Previous returns the instance of name before the newest, or nil.
func (o ObservedPod) Previous(name string) *ObservedContainer {
	seen := false
	for i := range o.Containers {
		if o.Containers[i].Name == name {
			if seen {
				return &o.Containers[i]
			}
			seen = true
		}
	}
	return nil
}

// Sort orders sandboxes and containers newest first (by attempt, then
// creation time), the order ObservedPod promises.
func (o *ObservedPod) Sort() {
	sort.SliceStable(o.Sandboxes, func(i, j int) bool {
		a, b := o.Sandboxes[i], o.Sandboxes[j]
		if a.Attempt != b.Attempt {
			return a.Attempt > b.Attempt
		}
		return a.CreatedAt.After(b.CreatedAt)
	})
	sort.SliceStable(o.Containers, func(i, j int) bool {
		a, b := o.Containers[i], o.Containers[j]
		if a.Attempt != b.Attempt {
			return a.Attempt > b.Attempt
		}
		return a.CreatedAt.After(b.CreatedAt)
	})
}

// observedSandbox converts a CRI sandbox status.
func observedSandbox(s *runtimeapi.PodSandboxStatus) ObservedSandbox {
	o := ObservedSandbox{
		ID:        s.GetId(),
		Attempt:   s.GetMetadata().GetAttempt(),
		Ready:     s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY,
		CreatedAt: nanos(s.GetCreatedAt()),
	}
	if n := s.GetNetwork(); n != nil {
		if n.GetIp() != "" {
			o.IPs = append(o.IPs, n.GetIp())
		}
		for _, ip := range n.GetAdditionalIps() {
			if ip.GetIp() != "" {
				o.IPs = append(o.IPs, ip.GetIp())
			}
		}
	}
	return o
}

// observedContainer converts a CRI container status.
func observedContainer(s *runtimeapi.ContainerStatus) ObservedContainer {
	o := ObservedContainer{
		ID:         s.GetId(),
		Name:       s.GetLabels()[LabelContainerName],
		Attempt:    s.GetMetadata().GetAttempt(),
		CreatedAt:  nanos(s.GetCreatedAt()),
		StartedAt:  nanos(s.GetStartedAt()),
		FinishedAt: nanos(s.GetFinishedAt()),
		ExitCode:   s.GetExitCode(),
		Reason:     s.GetReason(),
		Message:    s.GetMessage(),
		Image:      s.GetImage().GetImage(),
		ImageRef:   s.GetImageRef(),
	}
	if o.Name == "" {
		o.Name = s.GetMetadata().GetName()
	}
	switch s.GetState() {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		o.State = StateCreated
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		o.State = StateRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		o.State = StateExited
	}
	return o
}

func nanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
