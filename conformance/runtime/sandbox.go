package runtime

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
)

func describeVersion(s *shared) {
	Describe("Runtime version and status", func() {
		f := newFixture(s)

		It("names itself and speaks CRI API v1", harness.Labels(CapVersion), func(ctx SpecContext) {
			v, err := f.rt.Version(ctx, "v1")
			Expect(err).NotTo(HaveOccurred())
			Expect(v.RuntimeApiVersion).To(Equal("v1"), "RuntimeApiVersion")
			Expect(v.RuntimeName).NotTo(BeEmpty(), "RuntimeName")
			Expect(v.RuntimeVersion).NotTo(BeEmpty(), "RuntimeVersion")
		}, SpecTimeout(specTimeout))

		It("reports the runtime and its network ready", harness.Labels(CapVersion), func(ctx SpecContext) {
			st, err := f.rt.Status(ctx, false)
			Expect(err).NotTo(HaveOccurred())
			ready := map[string]bool{}
			for _, c := range st.GetStatus().GetConditions() {
				ready[c.Type] = c.Status
			}
			Expect(ready).To(HaveKeyWithValue(runtimeapi.RuntimeReady, true))
			Expect(ready).To(HaveKeyWithValue(runtimeapi.NetworkReady, true))
		}, SpecTimeout(specTimeout))
	})
}

func describeSandbox(s *shared) {
	Describe("Pod sandboxes", func() {
		f := newFixture(s)

		It("run ready and report their metadata, labels and annotations", harness.Labels(CapSandbox), func(ctx SpecContext) {
			before := time.Now().Add(-time.Minute).UnixNano()
			id, cfg := f.sandbox(ctx, "status")
			resp, err := f.rt.PodSandboxStatus(ctx, id, false)
			Expect(err).NotTo(HaveOccurred())
			st := resp.GetStatus()
			Expect(st.GetId()).To(Equal(id))
			Expect(st.GetState()).To(Equal(runtimeapi.PodSandboxState_SANDBOX_READY))
			Expect(st.GetMetadata().GetName()).To(Equal(cfg.Metadata.Name))
			Expect(st.GetMetadata().GetNamespace()).To(Equal(cfg.Metadata.Namespace))
			Expect(st.GetMetadata().GetUid()).To(Equal(cfg.Metadata.Uid))
			Expect(st.GetLabels()).To(Equal(cfg.Labels))
			Expect(st.GetAnnotations()).To(Equal(cfg.Annotations))
			Expect(st.GetCreatedAt()).To(BeNumerically(">", before), "CreatedAt is a time in nanoseconds")
		}, SpecTimeout(specTimeout))

		It("are listed, filtered by ID, state and label", harness.Labels(CapSandbox), func(ctx SpecContext) {
			a, aCfg := f.sandbox(ctx, "list-a")
			b, _ := f.sandbox(ctx, "list-b")
			Expect(f.rt.StopPodSandbox(ctx, b)).To(Succeed())

			all, err := f.rt.ListPodSandbox(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(sandboxIDs(all)).To(ContainElements(a, b))

			byID, err := f.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{Id: a})
			Expect(err).NotTo(HaveOccurred())
			Expect(sandboxIDs(byID)).To(ConsistOf(a))
			Expect(byID[0].GetMetadata().GetName()).To(Equal(aCfg.Metadata.Name))

			ready, err := f.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sandboxIDs(ready)).To(ContainElement(a))
			Expect(sandboxIDs(ready)).NotTo(ContainElement(b), "a stopped sandbox is not READY")

			byLabel, err := f.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"kubelab.io/sandbox": aCfg.Labels["kubelab.io/sandbox"]}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sandboxIDs(byLabel)).To(ConsistOf(a))
		}, SpecTimeout(specTimeout))

		It("stop: NOTREADY, with their containers stopped", harness.Labels(CapSandbox), func(ctx SpecContext) {
			sb, cfg := f.sandbox(ctx, "stop")
			c := f.running(ctx, sb, cfg, sleeper("sleeper"))
			Expect(f.rt.StopPodSandbox(ctx, sb)).To(Succeed())
			resp, err := f.rt.PodSandboxStatus(ctx, sb, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.GetStatus().GetState()).To(Equal(runtimeapi.PodSandboxState_SANDBOX_NOTREADY))
			f.waitState(ctx, c, runtimeapi.ContainerState_CONTAINER_EXITED)
			By("stopping a stopped sandbox again, which succeeds")
			Expect(f.rt.StopPodSandbox(ctx, sb)).To(Succeed())
		}, SpecTimeout(specTimeout))

		It("are removed with their containers", harness.Labels(CapSandbox), func(ctx SpecContext) {
			sb, cfg := f.sandbox(ctx, "remove")
			c := f.running(ctx, sb, cfg, sleeper("sleeper"))
			Expect(f.rt.StopPodSandbox(ctx, sb)).To(Succeed())
			Expect(f.rt.RemovePodSandbox(ctx, sb)).To(Succeed())
			_, err := f.rt.PodSandboxStatus(ctx, sb, false)
			Expect(status.Code(err)).To(Equal(codes.NotFound), "PodSandboxStatus of a removed sandbox: %v", err)
			_, err = f.rt.ContainerStatus(ctx, c, false)
			Expect(status.Code(err)).To(Equal(codes.NotFound), "ContainerStatus of a container of a removed sandbox: %v", err)
			all, err := f.rt.ListPodSandbox(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(sandboxIDs(all)).NotTo(ContainElement(sb))
			cs, err := f.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: sb})
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(BeEmpty())
			By("removing it again, which succeeds")
			Expect(f.rt.RemovePodSandbox(ctx, sb)).To(Succeed())
		}, SpecTimeout(specTimeout))

		It("give their containers the sandbox's hostname", harness.Labels(CapSandbox), func(ctx SpecContext) {
			sb, cfg := f.sandbox(ctx, "hostname")
			c := f.running(ctx, sb, cfg, sleeper("sleeper"))
			Expect(strings.TrimSpace(f.mustExec(ctx, c, "hostname"))).To(Equal(cfg.Hostname))
		}, SpecTimeout(specTimeout))
	})
}

func describeNetworkNamespace(s *shared) {
	Describe("Sandbox network namespaces", func() {
		f := newFixture(s)

		It("are the sandbox's own, with loopback up and the reported IP", harness.Labels(CapNetworkNamespace), func(ctx SpecContext) {
			sb, cfg := f.sandbox(ctx, "netns")
			resp, err := f.rt.PodSandboxStatus(ctx, sb, false)
			Expect(err).NotTo(HaveOccurred())
			ip := resp.GetStatus().GetNetwork().GetIp()
			Expect(ip).NotTo(BeEmpty(), "the sandbox's reported IP")
			c := f.running(ctx, sb, cfg, sleeper("sleeper"))
			Expect(f.netNSOf(ctx, c)).NotTo(Equal(hostNetNS()), "the container's network namespace is not the host's")
			links := f.mustExec(ctx, c, "ip", "-o", "link", "show", "lo")
			Expect(links).To(MatchRegexp(`<[^>]*\bUP\b[^>]*>`), "loopback is up")
			addrs := f.mustExec(ctx, c, "ip", "-o", "-4", "addr", "show")
			Expect(addrs).To(ContainSubstring("inet 127.0.0.1/8"), "loopback has 127.0.0.1")
			Expect(addrs).To(ContainSubstring("inet "+ip+"/"), "the container sees the sandbox's IP %s", ip)
		}, SpecTimeout(specTimeout))

		It("are shared by a sandbox's containers, not between sandboxes", harness.Labels(CapNetworkNamespace), func(ctx SpecContext) {
			sb1, cfg1 := f.sandbox(ctx, "share-a")
			sb2, cfg2 := f.sandbox(ctx, "share-b")
			a1 := f.running(ctx, sb1, cfg1, sleeper("one"))
			a2 := f.running(ctx, sb1, cfg1, sleeper("two"))
			b1 := f.running(ctx, sb2, cfg2, sleeper("one"))
			ns1 := f.netNSOf(ctx, a1)
			Expect(f.netNSOf(ctx, a2)).To(Equal(ns1), "two containers of one sandbox")
			Expect(f.netNSOf(ctx, b1)).NotTo(Equal(ns1), "containers of two sandboxes")
		}, SpecTimeout(specTimeout))

		It("are released when the sandbox is removed", harness.Labels(CapNetworkNamespace), func(ctx SpecContext) {
			sb, cfg := f.sandbox(ctx, "release")
			c := f.running(ctx, sb, cfg, sleeper("sleeper"))
			ns := f.netNSOf(ctx, c)
			Expect(netNSHolders(ns)).NotTo(BeEmpty(), "the sandbox's network namespace %s is held by a mount or a process", ns)
			Expect(f.rt.RemovePodSandbox(ctx, sb)).To(Succeed())
			Eventually(ctx, func() []string { return netNSHolders(ns) }).WithTimeout(releaseTimeout).Should(BeEmpty(),
				"after RemovePodSandbox, no mount or process holds the sandbox's network namespace %s", ns)
		}, SpecTimeout(specTimeout))
	})
}

// netNSHolders returns what keeps network namespace ns ("net:[INODE]")
// alive, as far as this process can see: nsfs mounts of it in this
// process's and init's mount tables, and processes in it.
func netNSHolders(ns string) []string {
	var out []string
	seen := map[string]bool{}
	for _, table := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && fields[3] == ns && !seen[fields[4]] {
				seen[fields[4]] = true
				out = append(out, "mount "+fields[4])
			}
		}
		f.Close()
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range procs {
		if l, err := os.Readlink(p); err == nil && l == ns {
			out = append(out, "process "+strings.Split(p, "/")[2])
		}
	}
	return out
}
