package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
)

const mib = 1 << 20

// withMemoryLimit sets a container's memory limit (and its memory+swap
// limit, as the kubelet does, so that swap does not hide it).
func withMemoryLimit(cfg *runtimeapi.ContainerConfig, bytes int64) *runtimeapi.ContainerConfig {
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: bytes, MemorySwapLimitInBytes: bytes}
	return cfg
}

func describeResources(s *shared) {
	Describe("Container resources", func() {
		f := newFixture(s)

		It("kill a container that exceeds its memory limit, reported as OOMKilled with exit code 137", harness.Labels(CapResources), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "oom")
			cfg := withMemoryLimit(containerConfig("hog", WorkloadImage, nil, []string{"alloc", "--mb", "256"}), 32*mib)
			id := f.run(ctx, sb, sbCfg, cfg)
			st := f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_EXITED)
			Expect(st.GetReason()).To(Equal("OOMKilled"), "reason of a container that allocated 256 MiB under a 32 MiB limit")
			Expect(st.GetExitCode()).To(Equal(int32(137)), "exit code of a container the OOM killer ended (SIGKILL: 128+9)")
		}, SpecTimeout(specTimeout))

		It("let a container under its memory limit run", harness.Labels(CapResources), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "under")
			cfg := withMemoryLimit(containerConfig("modest", WorkloadImage, nil, []string{"alloc", "--mb", "8"}), 96*mib)
			id := f.running(ctx, sb, sbCfg, cfg)
			Consistently(ctx, func() runtimeapi.ContainerState { return f.status(ctx, id).GetState() }).
				WithTimeout(2 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
		}, SpecTimeout(specTimeout))
	})
}

// outMount mounts a fresh host directory at /kl-out in cfg and returns the
// directory: the container writes what it saw there, independently of
// logs and exit codes.
func outMount(cfg *runtimeapi.ContainerConfig) string {
	dir := GinkgoT().TempDir()
	cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{ContainerPath: "/kl-out", HostPath: dir})
	return dir
}

func readOut(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "result"))
	return string(b)
}

func describeStopGrace(s *shared) {
	Describe("StopContainer", func() {
		f := newFixture(s)

		It("sends SIGTERM and lets the container exit within the grace period", harness.Labels(CapStopGrace), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "grace")
			// On SIGTERM it takes a second to finish, then exits 0.
			cfg := shell("graceful", `trap 'sleep 1; echo graceful > /kl-out/result; exit 0' TERM; echo ready > /kl-out/result; while :; do sleep 1 & wait $!; done`)
			out := outMount(cfg)
			id := f.running(ctx, sb, sbCfg, cfg)
			Eventually(ctx, func() string { return readOut(out) }).WithTimeout(waitTimeout).Should(Equal("ready\n"))
			Expect(f.rt.StopContainer(ctx, id, 30)).To(Succeed())
			Expect(f.status(ctx, id).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
			Expect(readOut(out)).To(Equal("graceful\n"), "the container's SIGTERM handler ran to the end")
		}, SpecTimeout(specTimeout))

		It("sends SIGKILL when the grace period ends", harness.Labels(CapStopGrace), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "kill")
			// It notes SIGTERM, then keeps running and ticking every 0.2s.
			cfg := shell("stubborn", `trap 't=1; echo term >> /kl-out/result' TERM; echo ready > /kl-out/result; `+
				`while :; do sleep 0.2 & wait $!; [ -n "$t" ] && echo tick >> /kl-out/result; done`)
			out := outMount(cfg)
			id := f.running(ctx, sb, sbCfg, cfg)
			Eventually(ctx, func() string { return readOut(out) }).WithTimeout(waitTimeout).Should(Equal("ready\n"))
			Expect(f.rt.StopContainer(ctx, id, 2)).To(Succeed(), "StopContainer with a 2s grace period ends a container that ignores SIGTERM")
			Expect(f.status(ctx, id).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
			lines := strings.Fields(readOut(out))
			Expect(lines).To(ContainElement("term"), "SIGTERM came first")
			Expect(strings.Count(readOut(out), "tick")).To(BeNumerically(">=", 3),
				"the container kept running after SIGTERM, during the grace period")
		}, SpecTimeout(specTimeout))
	})
}

// stopBound is how much longer than its timeout StopContainer may take to
// kill a container that ignores SIGTERM, and how long it may take to stop
// one that exits on SIGTERM at once: both far below the timeouts used.
const stopBound = 4 * time.Second

func describeStopTimeout(s *shared) {
	Describe("StopContainer timeout", func() {
		f := newFixture(s)

		It("bounds a stop on both sides: a container ignoring SIGTERM dies no sooner than the timeout nor much later, one exiting on SIGTERM stops well before it", harness.Labels(CapStopGrace), func(ctx SpecContext) {
			cases := []struct {
				name     string
				script   string
				timeout  int64
				min, max time.Duration
			}{
				{"stubborn", `trap 'echo term >> /kl-out/result' TERM; echo ready > /kl-out/result; while :; do sleep 0.2 & wait $!; done`,
					2, 2 * time.Second, 2*time.Second + stopBound},
				{"prompt", `trap 'exit 0' TERM; echo ready > /kl-out/result; while :; do sleep 0.2 & wait $!; done`,
					20, 0, stopBound},
			}
			sb, sbCfg := f.sandbox(ctx, "stop-timeout")
			for _, c := range cases {
				cfg := shell(c.name, c.script)
				out := outMount(cfg)
				id := f.running(ctx, sb, sbCfg, cfg)
				Eventually(ctx, func() string { return readOut(out) }).WithTimeout(waitTimeout).Should(Equal("ready\n"), "container %s is ready", c.name)
				start := time.Now()
				Expect(f.rt.StopContainer(ctx, id, c.timeout)).To(Succeed(), "StopContainer of container %s", c.name)
				took := time.Since(start)
				Expect(f.status(ctx, id).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED), "container %s once StopContainer returned", c.name)
				Expect(took).To(BeNumerically(">=", c.min), "StopContainer(%s, timeout %ds) returned after %v: SIGKILL came before the timeout", c.name, c.timeout, took)
				Expect(took).To(BeNumerically("<", c.max), "StopContainer(%s, timeout %ds) returned after %v", c.name, c.timeout, took)
			}
		}, SpecTimeout(specTimeout))
	})
}

func describeStats(s *shared) {
	Describe("Container stats", func() {
		f := newFixture(s)

		It("report the CPU and memory use of a running container", harness.Labels(CapStats), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "stats")
			id := f.running(ctx, sb, sbCfg, containerConfig("alloc", WorkloadImage, nil, []string{"alloc", "--mb", "24"}))
			Eventually(ctx, func(g Gomega) {
				st, err := f.rt.ContainerStats(ctx, id)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(st.GetAttributes().GetId()).To(Equal(id))
				g.Expect(st.GetAttributes().GetMetadata().GetName()).To(Equal("alloc"))
				g.Expect(st.GetMemory().GetWorkingSetBytes().GetValue()).To(BeNumerically(">=", 16*mib), "working set of a container holding 24 MiB")
				g.Expect(st.GetCpu().GetUsageCoreNanoSeconds().GetValue()).To(BeNumerically(">", 0), "CPU time of a container that touched 24 MiB")
				g.Expect(st.GetCpu().GetTimestamp()).To(BeNumerically(">", 0), "CPU stats timestamp")
			}).WithTimeout(waitTimeout).WithPolling(200 * time.Millisecond).Should(Succeed())
		}, SpecTimeout(specTimeout))

		It("are listed, filtered by sandbox", harness.Labels(CapStats), func(ctx SpecContext) {
			sb1, cfg1 := f.sandbox(ctx, "stats-a")
			sb2, cfg2 := f.sandbox(ctx, "stats-b")
			a := f.running(ctx, sb1, cfg1, sleeper("one"))
			b := f.running(ctx, sb1, cfg1, sleeper("two"))
			f.running(ctx, sb2, cfg2, sleeper("one"))
			Eventually(ctx, func(g Gomega) []string {
				st, err := f.rt.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{PodSandboxId: sb1})
				g.Expect(err).NotTo(HaveOccurred())
				var ids []string
				for _, s := range st {
					ids = append(ids, s.GetAttributes().GetId())
				}
				return ids
			}).WithTimeout(waitTimeout).Should(ConsistOf(a, b))
		}, SpecTimeout(specTimeout))
	})
}
