package runtime

import (
	"context"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
)

// withSandboxPidMode sets the PID namespace mode of a sandbox config and
// returns it.
func withSandboxPidMode(cfg *runtimeapi.PodSandboxConfig, m runtimeapi.NamespaceMode) *runtimeapi.PodSandboxConfig {
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = m
	return cfg
}

// withPidMode sets the PID namespace mode of a container config and
// returns it.
func withPidMode(cfg *runtimeapi.ContainerConfig, m runtimeapi.NamespaceMode) *runtimeapi.ContainerConfig {
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = m
	return cfg
}

// pidNSOf returns the PID namespace ("pid:[INODE]") a container's
// processes are in.
func (f *fixture) pidNSOf(ctx context.Context, id string) string {
	GinkgoHelper()
	ns := strings.TrimSpace(f.mustExec(ctx, id, "readlink", "/proc/self/ns/pid"))
	Expect(ns).To(MatchRegexp(`^pid:\[\d+\]$`), "the PID namespace of container %s", id)
	return ns
}

// processes returns the command lines (arguments joined by spaces) of every
// process a container sees.
func (f *fixture) processes(ctx context.Context, id string) []string {
	GinkgoHelper()
	out := f.mustExec(ctx, id, "sh", "-c", `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f 2>/dev/null; echo; done`)
	var cmds []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// hostPidNS is the PID namespace of the process running the suite.
func hostPidNS() string {
	GinkgoHelper()
	ns, err := os.Readlink("/proc/self/ns/pid")
	Expect(err).NotTo(HaveOccurred())
	return ns
}

func describePIDNamespace(s *shared) {
	Describe("PID namespaces", func() {
		f := newFixture(s)

		It("are shared by a POD-mode sandbox's containers, whose PID 1 is none of theirs; stopping one leaves the others running", harness.Labels(CapPIDNamespace), func(ctx SpecContext) {
			sbCfg := withSandboxPidMode(f.sandboxConfig("pidpod"), runtimeapi.NamespaceMode_POD)
			sb := f.runSandbox(ctx, sbCfg)
			a := f.running(ctx, sb, sbCfg, withPidMode(containerConfig("a", BusyboxImage, []string{"sleep", "3601"}, nil), runtimeapi.NamespaceMode_POD))
			b := f.running(ctx, sb, sbCfg, withPidMode(containerConfig("b", BusyboxImage, []string{"sleep", "3602"}, nil), runtimeapi.NamespaceMode_POD))
			Expect(f.pidNSOf(ctx, a)).To(Equal(f.pidNSOf(ctx, b)), "the containers' PID namespaces")
			Expect(f.processes(ctx, a)).To(ContainElements("sleep 3601", "sleep 3602"), "container a sees both containers' processes")
			init := strings.TrimRight(strings.ReplaceAll(f.mustExec(ctx, a, "cat", "/proc/1/cmdline"), "\x00", " "), " ")
			Expect(init).NotTo(BeElementOf("sleep 3601", "sleep 3602"), "PID 1 of the pod's namespace is the sandbox's, not a container's")
			// Not PID 1, sleep dies of SIGTERM; either way the stop must end a
			// alone.
			Expect(f.rt.StopContainer(ctx, a, 30)).To(Succeed())
			Expect(f.status(ctx, a).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
			Expect(f.status(ctx, b).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING), "the pod's other container after stopping a")
			Expect(f.processes(ctx, b)).To(And(ContainElement("sleep 3602"), Not(ContainElement("sleep 3601"))), "what container b sees after a stopped")
		}, SpecTimeout(specTimeout))

		It("are each container's own in CONTAINER mode, the container's process being PID 1", harness.Labels(CapPIDNamespace), func(ctx SpecContext) {
			sbCfg := withSandboxPidMode(f.sandboxConfig("pidctr"), runtimeapi.NamespaceMode_CONTAINER)
			sb := f.runSandbox(ctx, sbCfg)
			a := f.running(ctx, sb, sbCfg, withPidMode(containerConfig("a", BusyboxImage, []string{"sleep", "3601"}, nil), runtimeapi.NamespaceMode_CONTAINER))
			b := f.running(ctx, sb, sbCfg, withPidMode(containerConfig("b", BusyboxImage, []string{"sleep", "3602"}, nil), runtimeapi.NamespaceMode_CONTAINER))
			Expect(f.pidNSOf(ctx, a)).NotTo(Equal(f.pidNSOf(ctx, b)), "the containers' PID namespaces")
			Expect(f.pidNSOf(ctx, a)).NotTo(Equal(hostPidNS()), "container a's PID namespace is not the host's")
			Expect(procStrings(f.mustExec(ctx, a, "cat", "/proc/1/cmdline"))).To(Equal([]string{"sleep", "3601"}), "PID 1 of container a")
			Expect(f.processes(ctx, a)).NotTo(ContainElement("sleep 3602"), "container a does not see container b's process")
		}, SpecTimeout(specTimeout))
	})
}
