package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/kubelab/kubelab/spec"
)

// SandboxNamespace is the namespace (PodSandboxMetadata.Namespace) of every
// sandbox the suite runs; RemoveAll removes those left behind.
const SandboxNamespace = "kubelab-runtime-conformance"

// Time limits of the suite's specs and waits.
const (
	// specTimeout bounds one spec.
	specTimeout = 2 * time.Minute
	// waitTimeout bounds a wait for a container to reach a state.
	waitTimeout = 45 * time.Second
	// releaseTimeout bounds the wait for a removed sandbox's network
	// namespace to go.
	releaseTimeout = 15 * time.Second
	// startTimeout bounds the start of the runtime under test.
	startTimeout = 5 * time.Minute
)

// shared is the runtime of one run of the suite, started on first use.
type shared struct {
	target Target

	once sync.Once
	rt   spec.Runtime
	stop func() error
	err  error
}

// runtime returns the runtime, starting it on the first call; it fails the
// spec if the runtime could not start.
func (s *shared) runtime() spec.Runtime {
	GinkgoHelper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		s.rt, s.stop, s.err = s.target.Start(ctx)
	})
	if errors.Is(s.err, spec.ErrUnsupported) {
		Skip(fmt.Sprintf("runtime target %q cannot run here: %v", s.target.Name, s.err))
	}
	if s.err != nil {
		Fail(fmt.Sprintf("starting runtime target %q: %v", s.target.Name, s.err))
	}
	return s.rt
}

// close stops the runtime if it was started.
func (s *shared) close() error {
	if s.rt == nil || s.stop == nil {
		return nil
	}
	return s.stop()
}

// fixture gives the specs of a container the runtime and helpers that
// clean up after the spec.
type fixture struct {
	shared *shared
	rt     spec.Runtime
}

func newFixture(s *shared) *fixture {
	f := &fixture{shared: s}
	BeforeEach(func() { f.rt = s.runtime() })
	return f
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sandboxConfig returns the config of a new sandbox of the suite, with a
// log directory of its own (removed after the spec).
func (f *fixture) sandboxConfig(name string) *runtimeapi.PodSandboxConfig {
	suffix := randomHex(4)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: "kl-" + name + "-" + suffix, Namespace: SandboxNamespace, Uid: "uid-" + randomHex(8),
		},
		Hostname:     name + "-" + suffix,
		LogDirectory: GinkgoT().TempDir(),
		Labels:       map[string]string{"kubelab.io/suite": "runtime", "kubelab.io/sandbox": name + "-" + suffix},
		Annotations:  map[string]string{"kubelab.io/annotation": "value of " + name},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: podNamespaces(),
		}},
	}
}

// podNamespaces are the namespace modes the kubelet asks for a pod without
// hostNetwork, hostPID, hostIPC or shareProcessNamespace: each container
// has a PID namespace of its own (CRI's zero value, POD, would share one).
func podNamespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
}

// sandbox runs a sandbox that is removed when the spec ends.
func (f *fixture) sandbox(ctx context.Context, name string) (string, *runtimeapi.PodSandboxConfig) {
	GinkgoHelper()
	cfg := f.sandboxConfig(name)
	return f.runSandbox(ctx, cfg), cfg
}

// runSandbox runs a sandbox from cfg and removes it when the spec ends.
func (f *fixture) runSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) string {
	GinkgoHelper()
	id, err := f.rt.RunPodSandbox(ctx, cfg, "")
	Expect(err).NotTo(HaveOccurred(), "RunPodSandbox")
	Expect(id).NotTo(BeEmpty(), "RunPodSandbox's sandbox ID")
	rt := f.rt
	DeferCleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		Expect(rt.RemovePodSandbox(ctx, id)).To(Succeed(), "removing sandbox %s after the spec", id)
	})
	return id
}

// containerConfig returns a container config of image with command and
// args (either may be nil), logging to NAME.log.
func containerConfig(name, image string, command, args []string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  command,
		Args:     args,
		LogPath:  name + ".log",
		Labels:   map[string]string{"kubelab.io/container": name},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: podNamespaces(),
		}},
	}
}

// shell returns a busybox container config running script with sh -c.
func shell(name, script string) *runtimeapi.ContainerConfig {
	return containerConfig(name, BusyboxImage, []string{"sh", "-c", script}, nil)
}

// sleepScript runs until SIGTERM, which ends it at once with code 0.
const sleepScript = `trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done`

// sleeper returns a busybox container config that runs until stopped.
func sleeper(name string) *runtimeapi.ContainerConfig { return shell(name, sleepScript) }

// create creates a container in sandbox sb.
func (f *fixture) create(ctx context.Context, sb string, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	GinkgoHelper()
	id, err := f.rt.CreateContainer(ctx, sb, cfg, sbCfg)
	Expect(err).NotTo(HaveOccurred(), "CreateContainer %s", cfg.GetMetadata().GetName())
	Expect(id).NotTo(BeEmpty(), "CreateContainer's container ID")
	return id
}

// run creates and starts a container in sandbox sb.
func (f *fixture) run(ctx context.Context, sb string, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	GinkgoHelper()
	id := f.create(ctx, sb, sbCfg, cfg)
	Expect(f.rt.StartContainer(ctx, id)).To(Succeed(), "StartContainer %s", cfg.GetMetadata().GetName())
	return id
}

// running runs a container that runs until stopped, and waits until it is
// running.
func (f *fixture) running(ctx context.Context, sb string, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	GinkgoHelper()
	id := f.run(ctx, sb, sbCfg, cfg)
	f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
	return id
}

// status returns a container's status.
func (f *fixture) status(ctx context.Context, id string) *runtimeapi.ContainerStatus {
	GinkgoHelper()
	resp, err := f.rt.ContainerStatus(ctx, id, false)
	Expect(err).NotTo(HaveOccurred(), "ContainerStatus %s", id)
	Expect(resp.GetStatus()).NotTo(BeNil(), "ContainerStatus %s has a status", id)
	return resp.GetStatus()
}

// waitState waits until a container is in state and returns its status.
func (f *fixture) waitState(ctx context.Context, id string, state runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	GinkgoHelper()
	var st *runtimeapi.ContainerStatus
	Eventually(ctx, func(g Gomega) runtimeapi.ContainerState {
		resp, err := f.rt.ContainerStatus(ctx, id, false)
		g.Expect(err).NotTo(HaveOccurred(), "ContainerStatus %s", id)
		st = resp.GetStatus()
		return st.GetState()
	}).WithTimeout(waitTimeout).WithPolling(50*time.Millisecond).Should(Equal(state), "container %s", id)
	return st
}

// execResult is what ExecSync returned.
type execResult struct {
	stdout, stderr string
	code           int
}

// exec runs cmd in a container with ExecSync. A non-zero exit code is a
// result, not an error (cri-client reports it as a utilexec.ExitError).
func (f *fixture) exec(ctx context.Context, id string, timeout time.Duration, cmd ...string) (execResult, error) {
	stdout, stderr, err := f.rt.ExecSync(ctx, id, cmd, timeout)
	r := execResult{stdout: string(stdout), stderr: string(stderr)}
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) {
		r.code = exitErr.ExitStatus()
		err = nil
	}
	return r, err
}

// mustExec runs cmd in a container and returns its stdout; it must exit 0.
func (f *fixture) mustExec(ctx context.Context, id string, cmd ...string) string {
	GinkgoHelper()
	r, err := f.exec(ctx, id, 30*time.Second, cmd...)
	Expect(err).NotTo(HaveOccurred(), "ExecSync %q", cmd)
	Expect(r.code).To(Equal(0), "exit code of ExecSync %q (stderr %q)", cmd, r.stderr)
	return r.stdout
}

// netNSOf returns the network namespace ("net:[INODE]") a container's
// processes are in.
func (f *fixture) netNSOf(ctx context.Context, id string) string {
	GinkgoHelper()
	ns := strings.TrimSpace(f.mustExec(ctx, id, "readlink", "/proc/self/ns/net"))
	Expect(ns).To(MatchRegexp(`^net:\[\d+\]$`), "the network namespace of container %s", id)
	return ns
}

// hostNetNS is the network namespace of the process running the suite.
func hostNetNS() string {
	GinkgoHelper()
	ns, err := os.Readlink("/proc/self/ns/net")
	Expect(err).NotTo(HaveOccurred())
	return ns
}

// missingID is an ID that names no sandbox or container.
func missingID() string { return "kubelab-missing-" + randomHex(8) }

// sandboxIDs returns the IDs of sandboxes.
func sandboxIDs(items []*runtimeapi.PodSandbox) []string {
	out := make([]string, 0, len(items))
	for _, s := range items {
		out = append(out, s.Id)
	}
	return out
}

// containerIDs returns the IDs of containers.
func containerIDs(items []*runtimeapi.Container) []string {
	out := make([]string, 0, len(items))
	for _, c := range items {
		out = append(out, c.Id)
	}
	return out
}

func describef(format string, args ...any) string { return fmt.Sprintf(format, args...) }
