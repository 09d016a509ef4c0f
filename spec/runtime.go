package spec

import (
	"context"

	criapi "k8s.io/cri-api/pkg/apis"
)

// Runtime is the container runtime contract: the Container Runtime Interface
// itself, CRI's RuntimeService plus ImageManagerService from k8s.io/cri-api,
// so any CRI runtime (containerd, CRI-O, kubelab's own process runtime) plugs
// in unchanged through plugins/runtime/cri.
//
// kubelab's kubelet requires: Version, Status, RunPodSandbox,
// StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox,
// CreateContainer, StartContainer, StopContainer, RemoveContainer,
// ListContainers, ContainerStatus, ExecSync, ListImages, ImageStatus and
// PullImage. Everything else may return a gRPC Unimplemented status; the
// conformance suite reports the matching capabilities as skipped when the
// plugin does not declare them.
//
// Errors follow CRI's conventions, as containerd implements them, with gRPC
// status codes:
//   - status, start and exec calls on an unknown sandbox, container or image
//     are NotFound; starting a container that was already started, or
//     creating one in a stopped sandbox, is FailedPrecondition;
//   - StopContainer, RemoveContainer, StopPodSandbox and RemovePodSandbox are
//     idempotent: an unknown ID succeeds;
//   - RemoveContainer of a running container kills it and removes it
//     ("must be forcibly removed"), and RemovePodSandbox stops and removes
//     every container of the sandbox.
type Runtime interface {
	criapi.RuntimeService
	criapi.ImageManagerService
}

// RuntimeConfig is what a runtime plugin is started or connected with.
type RuntimeConfig struct {
	// RootDir is a directory the runtime owns for its state and images.
	RootDir string
	// Endpoint, when set, is a CRI endpoint such as
	// "unix:///run/containerd/containerd.sock" to connect to.
	Endpoint string
	// Options are plugin-specific key=value settings, plus the one
	// standard option RuntimeOptionPodCIDR that every runtime plugin must
	// accept (and may ignore).
	Options map[string]string
}

// RuntimeOptionPodCIDR is the standard runtime option (RuntimeConfig.Options)
// that gives a runtime the IPv4 range, such as "10.160.3.0/24", it takes
// its pods' addresses from. Every runtime plugin must accept it: one that
// allocates pod addresses itself uses it instead of its default range; one
// whose pods get no addresses of its own (a CRI client whose runtime has
// its own CNI config) ignores it. The conformance runner hands every
// runtime plugin under test a random range no host interface is in, so
// that runs side by side, and a running `kubelab runtime`, never share a
// range.
const RuntimeOptionPodCIDR = "pod-cidr"

// RuntimeFactory starts or connects to a runtime. The returned closer
// releases what the factory started.
type RuntimeFactory func(ctx context.Context, cfg RuntimeConfig) (Runtime, func() error, error)
