package runtime

import "github.com/kubelab/kubelab/spec"

// Capability labels of the runtime suite. Every spec carries exactly one.
// All are mandatory: every CRI runtime the kubelet can drive needs them.
const (
	// CapVersion: Version names the runtime and CRI API v1; Status reports
	// the runtime and its network ready.
	CapVersion spec.Capability = "runtime:version"
	// CapSandbox: pod sandboxes run, report their metadata, labels and
	// annotations, are listed with filters, stop (NOTREADY, containers
	// stopped) and are removed with their containers; containers get the
	// sandbox's hostname.
	CapSandbox spec.Capability = "runtime:sandbox"
	// CapNetworkNamespace: each sandbox has a network namespace of its own,
	// with loopback up and the reported IP, shared by its containers and
	// released when the sandbox is removed.
	CapNetworkNamespace spec.Capability = "runtime:network-namespace"
	// CapContainerLifecycle: containers are created, started, stopped and
	// removed, reporting each state with its timestamps, and are listed
	// with filters.
	CapContainerLifecycle spec.Capability = "runtime:container-lifecycle"
	// CapExitCode: a container's exit code is reported, 128+signal for a
	// killed one.
	CapExitCode spec.Capability = "runtime:exit-code"
	// CapEnvArgsWorkdir: the container's process runs with the command,
	// arguments, environment and working directory of its config, over the
	// image's defaults.
	CapEnvArgsWorkdir spec.Capability = "runtime:env-args-workdir"
	// CapLogs: stdout and stderr go to the container's log file in the CRI
	// format ("<RFC3339Nano> <stream> <F|P> <line>").
	CapLogs spec.Capability = "runtime:logs"
	// CapExec: ExecSync runs a command in a running container and returns
	// its stdout, stderr and exit code, and honours its timeout.
	CapExec spec.Capability = "runtime:exec"
	// CapResources: a memory limit is enforced, and a container killed for
	// exceeding it is reported OOMKilled.
	CapResources spec.Capability = "runtime:resources"
	// CapStopGrace: StopContainer sends the stop signal (SIGTERM) first and
	// lets the container exit within the grace period, and sends SIGKILL
	// when it ends.
	CapStopGrace spec.Capability = "runtime:stop-grace"
	// CapImages: images are listed and reported by name and ID; an unknown
	// image has no status; pulling an image that exists nowhere fails.
	CapImages spec.Capability = "runtime:images"
	// CapStats: ContainerStats and ListContainerStats report the CPU and
	// memory use of running containers.
	CapStats spec.Capability = "runtime:stats"
	// CapErrors: unknown IDs, starting twice, a stopped sandbox, a missing
	// image and a command that cannot start get gRPC status errors (or an
	// exited container with a reason); removal is idempotent and removing a
	// running container kills it.
	CapErrors spec.Capability = "runtime:errors"
	// CapPIDNamespace: in PID mode POD a sandbox's containers share one PID
	// namespace whose PID 1 is none of theirs (the sandbox's), and
	// stopping one leaves the others running; in mode CONTAINER each
	// container has its own, its process being PID 1.
	CapPIDNamespace spec.Capability = "runtime:pid-namespace"
)

// Capabilities lists every capability label of the suite in the order the
// reports show them.
func Capabilities() []spec.Capability {
	return []spec.Capability{
		CapVersion, CapSandbox, CapNetworkNamespace, CapContainerLifecycle, CapExitCode,
		CapEnvArgsWorkdir, CapLogs, CapExec, CapResources, CapStopGrace, CapImages,
		CapStats, CapErrors, CapPIDNamespace,
	}
}
