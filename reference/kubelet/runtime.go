package kubelet

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is the part of CRI (spec.Runtime) the kubelet uses. Every
// spec.Runtime satisfies it. Errors follow spec.Runtime's conventions; the
// kubelet never decides an error's kind from its text.
type Runtime interface {
	// Version reports the runtime's name and version.
	Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error)
	// Status reports the RuntimeReady and NetworkReady conditions.
	Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error)

	// RunPodSandbox creates and starts a sandbox.
	RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error)
	// StopPodSandbox stops a sandbox and its containers.
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	// RemovePodSandbox removes a sandbox and its containers.
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
	// PodSandboxStatus reports a sandbox's state and network.
	PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error)
	// ListPodSandbox lists sandboxes.
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)

	// CreateContainer creates a container in a sandbox.
	CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
	// StartContainer starts a created container.
	StartContainer(ctx context.Context, containerID string) error
	// StopContainer stops a container, with SIGKILL after timeout seconds.
	StopContainer(ctx context.Context, containerID string, timeout int64) error
	// RemoveContainer removes a container.
	RemoveContainer(ctx context.Context, containerID string) error
	// ListContainers lists containers.
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	// ContainerStatus reports a container's state and exit.
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	// ExecSync runs a command in a container and waits for it.
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout []byte, stderr []byte, err error)

	// Exec, Attach and PortForward return the URL of the runtime's
	// streaming server for the session (the kubelet API proxies to it).
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	// Attach: see Exec.
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	// PortForward: see Exec.
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)

	// ListPodSandboxStats and ListContainerStats report resource usage.
	ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error)
	// ListContainerStats: see ListPodSandboxStats.
	ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error)

	// ImageStatus reports whether an image is present.
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
	// PullImage pulls an image and returns its reference.
	PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
}

// Labels the kubelet puts on sandboxes and containers, as upstream's
// kubelet does, so that a relist can tell which pod and container each
// belongs to.
const (
	// LabelPodName is the pod's name.
	LabelPodName = "io.kubernetes.pod.name"
	// LabelPodNamespace is the pod's namespace.
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	// LabelPodUID is the pod's UID.
	LabelPodUID = "io.kubernetes.pod.uid"
	// LabelContainerName is the container's name in the pod spec.
	LabelContainerName = "io.kubernetes.container.name"
	// LabelContainerType is "init" for init containers, "app" otherwise
	// (upstream only sets it on sandboxes; kubelab uses it to tell the two
	// kinds apart when names could be confused).
	LabelContainerType = "io.kubelab.container.type"
)
