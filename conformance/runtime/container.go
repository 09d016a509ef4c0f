package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
)

func describeContainerLifecycle(s *shared) {
	Describe("Container lifecycle", func() {
		f := newFixture(s)

		It("creates, starts, stops and removes a container, reporting each state", harness.Labels(CapContainerLifecycle), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "lifecycle")
			cfg := sleeper("main")
			cfg.Annotations = map[string]string{"kubelab.io/note": "lifecycle"}
			before := time.Now().Add(-time.Minute).UnixNano()
			id := f.create(ctx, sb, sbCfg, cfg)

			st := f.status(ctx, id)
			Expect(st.GetId()).To(Equal(id))
			Expect(st.GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_CREATED))
			Expect(st.GetMetadata().GetName()).To(Equal("main"))
			Expect(st.GetLabels()).To(Equal(cfg.Labels))
			Expect(st.GetAnnotations()).To(Equal(cfg.Annotations))
			Expect(st.GetCreatedAt()).To(BeNumerically(">", before))
			Expect(st.GetStartedAt()).To(BeZero(), "StartedAt of a created container")
			Expect(st.GetImageRef()).NotTo(BeEmpty(), "ImageRef")

			Expect(f.rt.StartContainer(ctx, id)).To(Succeed())
			st = f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING)
			Expect(st.GetStartedAt()).To(BeNumerically(">=", st.GetCreatedAt()), "StartedAt")
			Expect(st.GetFinishedAt()).To(BeZero(), "FinishedAt of a running container")

			Expect(f.rt.StopContainer(ctx, id, 10)).To(Succeed())
			st = f.status(ctx, id)
			Expect(st.GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED), "state once StopContainer returned")
			Expect(st.GetFinishedAt()).To(BeNumerically(">=", st.GetStartedAt()), "FinishedAt")
			By("stopping a stopped container again, which succeeds")
			Expect(f.rt.StopContainer(ctx, id, 10)).To(Succeed())

			Expect(f.rt.RemoveContainer(ctx, id)).To(Succeed())
			_, err := f.rt.ContainerStatus(ctx, id, false)
			Expect(status.Code(err)).To(Equal(codes.NotFound), "ContainerStatus of a removed container: %v", err)
			By("removing it again, which succeeds")
			Expect(f.rt.RemoveContainer(ctx, id)).To(Succeed())
		}, SpecTimeout(specTimeout))

		It("lists containers, filtered by ID, sandbox, state and label", harness.Labels(CapContainerLifecycle), func(ctx SpecContext) {
			sb1, cfg1 := f.sandbox(ctx, "list-a")
			sb2, cfg2 := f.sandbox(ctx, "list-b")
			running := f.running(ctx, sb1, cfg1, sleeper("running"))
			created := f.create(ctx, sb1, cfg1, sleeper("created"))
			other := f.running(ctx, sb2, cfg2, sleeper("other"))

			list := func(filter *runtimeapi.ContainerFilter) []string {
				GinkgoHelper()
				cs, err := f.rt.ListContainers(ctx, filter)
				Expect(err).NotTo(HaveOccurred())
				return containerIDs(cs)
			}
			Expect(list(nil)).To(ContainElements(running, created, other))
			Expect(list(&runtimeapi.ContainerFilter{Id: running})).To(ConsistOf(running))
			Expect(list(&runtimeapi.ContainerFilter{PodSandboxId: sb1})).To(ConsistOf(running, created))
			Expect(list(&runtimeapi.ContainerFilter{PodSandboxId: sb1,
				State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED}})).To(ConsistOf(created))
			Expect(list(&runtimeapi.ContainerFilter{PodSandboxId: sb1,
				State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})).To(ConsistOf(running))
			Expect(list(&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"kubelab.io/container": "other"}, PodSandboxId: sb2})).To(ConsistOf(other))
		}, SpecTimeout(specTimeout))
	})
}

func describeContainerMetadata(s *shared) {
	Describe("Container metadata", func() {
		f := newFixture(s)

		It("round-trips labels, annotations and metadata through ContainerStatus and ListContainers", harness.Labels(CapContainerLifecycle), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "meta")
			cfg := sleeper("meta")
			cfg.Metadata.Attempt = 3
			cfg.Labels["io.kubernetes.pod.name"] = "web-1"
			cfg.Annotations = map[string]string{
				"io.kubernetes.container.restartCount": "3",
				"kubelab.io/with-equals":               "a=b, c",
				"kubelab.io/empty":                     "",
			}
			id := f.running(ctx, sb, sbCfg, cfg)
			st := f.status(ctx, id)
			Expect(st.GetLabels()).To(Equal(cfg.Labels), "ContainerStatus labels")
			Expect(st.GetAnnotations()).To(Equal(cfg.Annotations), "ContainerStatus annotations")
			Expect(st.GetMetadata().GetAttempt()).To(Equal(uint32(3)), "ContainerStatus attempt")
			list, err := f.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{Id: id})
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(HaveLen(1))
			c := list[0]
			Expect(c.GetPodSandboxId()).To(Equal(sb))
			Expect(c.GetMetadata().GetName()).To(Equal("meta"))
			Expect(c.GetMetadata().GetAttempt()).To(Equal(uint32(3)), "ListContainers attempt")
			Expect(c.GetLabels()).To(Equal(cfg.Labels), "ListContainers labels")
			Expect(c.GetAnnotations()).To(Equal(cfg.Annotations), "ListContainers annotations (the kubelet reads restart counts there)")
			Expect(c.GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
		}, SpecTimeout(specTimeout))
	})
}

func describeExitCode(s *shared) {
	Describe("Container exit codes", func() {
		f := newFixture(s)

		It("are reported for processes that exit by themselves", harness.Labels(CapExitCode), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "exit")
			codes := map[string]int32{"zero": 0, "three": 3, "fortytwo": 42, "max": 255}
			ids := map[string]string{}
			for name, code := range codes {
				ids[name] = f.run(ctx, sb, sbCfg, containerConfig(name, WorkloadImage, nil, []string{"exit", "--code", describef("%d", code)}))
			}
			for name, code := range codes {
				st := f.waitState(ctx, ids[name], runtimeapi.ContainerState_CONTAINER_EXITED)
				Expect(st.GetExitCode()).To(Equal(code), "exit code of container %s", name)
				Expect(st.GetFinishedAt()).To(BeNumerically(">", 0), "FinishedAt of container %s", name)
			}
		}, SpecTimeout(specTimeout))

		It("are 128+9 for a process killed by SIGKILL", harness.Labels(CapExitCode), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "killed")
			// The workload has no SIGTERM handler as PID 1: only SIGKILL ends it.
			id := f.running(ctx, sb, sbCfg, containerConfig("stubborn", BusyboxImage, []string{"sleep", "3600"}, nil))
			Expect(f.rt.StopContainer(ctx, id, 1)).To(Succeed())
			st := f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_EXITED)
			Expect(st.GetExitCode()).To(Equal(int32(137)), "exit code of a container killed by SIGKILL")
		}, SpecTimeout(specTimeout))
	})
}

// procStrings reads a NUL-separated /proc file of a container's PID 1.
func procStrings(raw string) []string {
	return strings.Split(strings.TrimRight(raw, "\x00"), "\x00")
}

func describeEnvArgsWorkdir(s *shared) {
	Describe("Container command, arguments, environment and working directory", func() {
		f := newFixture(s)

		It("are those of the config: Command, Args, Env (values with '=' and empty ones verbatim) and WorkingDir", harness.Labels(CapEnvArgsWorkdir), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "args")
			cfg := containerConfig("main", BusyboxImage, []string{"sh", "-c", sleepScript}, []string{"kl-arg0", "two words", "x=y"})
			cfg.Envs = []*runtimeapi.KeyValue{{Key: "KL_ONE", Value: []byte("1")}, {Key: "KL_SPACED", Value: []byte("with  spaces")}, {Key: "KL_EMPTY", Value: []byte("")},
				{Key: "KL_EQUALS", Value: []byte("a=b==c=")}, {Key: "KL_LEADING", Value: []byte("=x")}}
			cfg.WorkingDir = "/tmp"
			id := f.running(ctx, sb, sbCfg, cfg)
			Expect(procStrings(f.mustExec(ctx, id, "cat", "/proc/1/cmdline"))).To(Equal(
				[]string{"sh", "-c", sleepScript, "kl-arg0", "two words", "x=y"}), "the command line of the container's process")
			env := procStrings(f.mustExec(ctx, id, "cat", "/proc/1/environ"))
			Expect(env).To(ContainElements("KL_ONE=1", "KL_SPACED=with  spaces", "KL_EMPTY=", "KL_EQUALS=a=b==c=", "KL_LEADING==x"), "values reach the process verbatim, '=' included")
			Expect(env).To(ContainElement(HavePrefix("PATH=")), "the image's PATH is kept")
			Expect(strings.TrimSpace(f.mustExec(ctx, id, "readlink", "/proc/1/cwd"))).To(Equal("/tmp"), "working directory")
		}, SpecTimeout(specTimeout))

		It("default to the image's: Args alone replace the image's command, the image's environment is kept", harness.Labels(CapEnvArgsWorkdir), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "defaults")
			cfg := containerConfig("main", BusyboxImage, nil, []string{"sleep", "3600"})
			cfg.Envs = []*runtimeapi.KeyValue{{Key: "KL_ADDED", Value: []byte("yes")}}
			id := f.running(ctx, sb, sbCfg, cfg)
			Expect(procStrings(f.mustExec(ctx, id, "cat", "/proc/1/cmdline"))).To(Equal([]string{"sleep", "3600"}))
			env := procStrings(f.mustExec(ctx, id, "cat", "/proc/1/environ"))
			Expect(env).To(ContainElement("KL_ADDED=yes"))
			Expect(env).To(ContainElement(HavePrefix("PATH=/")), "the image's PATH")
			Expect(strings.TrimSpace(f.mustExec(ctx, id, "readlink", "/proc/1/cwd"))).To(Equal("/"), "the image's working directory")
			Expect(f.rt.StopContainer(ctx, id, 0)).To(Succeed())
		}, SpecTimeout(specTimeout))
	})
}

// criLogLine is a line of a CRI log file.
var criLogLine = regexp.MustCompile(`^(\S+) (stdout|stderr) (F|P) (.*)$`)

// logEntry is one parsed line of a CRI log file.
type logEntry struct {
	time   time.Time
	stream string
	full   bool
	text   string
}

// readCRILog parses a CRI log file. A complete line that is not in the
// format "<RFC3339Nano> <stdout|stderr> <F|P> <text>" ends the wait at
// once: it will not get better.
func readCRILog(g Gomega, path string) []logEntry {
	b, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred(), "reading the container's log file")
	var out []logEntry
	for len(b) > 0 {
		line, rest, complete := bytes.Cut(b, []byte("\n"))
		b = rest
		if !complete {
			break // being written
		}
		m := criLogLine.FindStringSubmatch(string(line))
		if m == nil {
			StopTrying(describef("log line %q is not \"<RFC3339Nano> <stdout|stderr> <F|P> <text>\"", line)).Now()
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			StopTrying(describef("the timestamp of log line %q is not RFC 3339: %v", line, err)).Now()
		}
		out = append(out, logEntry{time: ts, stream: m[2], full: m[3] == "F", text: m[4]})
	}
	return out
}

func describeLogs(s *shared) {
	Describe("Container logs", func() {
		f := newFixture(s)

		It("hold stdout and stderr in the CRI log format", harness.Labels(CapLogs), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "logs")
			cfg := containerConfig("logger", WorkloadImage, nil, []string{"logs", "--lines", "3"})
			id := f.run(ctx, sb, sbCfg, cfg)
			f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_EXITED)
			path := filepath.Join(sbCfg.LogDirectory, cfg.LogPath)
			Eventually(ctx, func(g Gomega) {
				var stdout, stderr []string
				last := map[string]time.Time{}
				for _, e := range readCRILog(g, path) {
					g.Expect(e.full).To(BeTrue(), "short lines are full (F) lines: %q", e.text)
					// Streams are copied side by side: only each one's
					// timestamps are ordered.
					g.Expect(e.time).To(BeTemporally(">=", last[e.stream]), "timestamps of %s do not go back", e.stream)
					last[e.stream] = e.time
					if e.stream == "stdout" {
						stdout = append(stdout, e.text)
					} else {
						stderr = append(stderr, e.text)
					}
				}
				g.Expect(stdout).To(Equal([]string{"stdout line 1", "stdout line 2", "stdout line 3"}))
				g.Expect(stderr).To(Equal([]string{"stderr line 1", "stderr line 2", "stderr line 3"}))
			}).WithTimeout(waitTimeout).Should(Succeed())
			Expect(f.status(ctx, id).GetLogPath()).To(HaveSuffix(cfg.LogPath), "ContainerStatus.LogPath")
		}, SpecTimeout(specTimeout))

		It("are written while the container runs", harness.Labels(CapLogs), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "follow")
			cfg := containerConfig("logger", WorkloadImage, nil, []string{"logs", "--lines", "2", "--keep-running"})
			id := f.running(ctx, sb, sbCfg, cfg)
			path := filepath.Join(sbCfg.LogDirectory, cfg.LogPath)
			Eventually(ctx, func(g Gomega) []string {
				var lines []string
				for _, e := range readCRILog(g, path) {
					lines = append(lines, e.stream+": "+e.text)
				}
				return lines
			}).WithTimeout(waitTimeout).Should(ContainElements("stdout: stdout line 2", "stderr: stderr line 2"))
			Expect(f.status(ctx, id).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
		}, SpecTimeout(specTimeout))
	})
}

func describeExec(s *shared) {
	Describe("ExecSync", func() {
		f := newFixture(s)

		It("runs a command and returns its stdout, stderr and exit code", harness.Labels(CapExec), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "exec")
			id := f.running(ctx, sb, sbCfg, sleeper("main"))
			r, err := f.exec(ctx, id, 30*time.Second, "sh", "-c", "echo out; echo err >&2; exit 3")
			Expect(err).NotTo(HaveOccurred())
			Expect(r).To(Equal(execResult{stdout: "out\n", stderr: "err\n", code: 3}))
			r, err = f.exec(ctx, id, 30*time.Second, "true")
			Expect(err).NotTo(HaveOccurred())
			Expect(r.code).To(Equal(0))
		}, SpecTimeout(specTimeout))

		It("runs in the container's filesystem and environment", harness.Labels(CapExec), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "exec-env")
			cfg := shell("main", "echo written-by-main > /tmp/marker; "+sleepScript)
			cfg.Envs = []*runtimeapi.KeyValue{{Key: "KL_VAR", Value: []byte("from-config")}}
			id := f.running(ctx, sb, sbCfg, cfg)
			Eventually(ctx, func() string {
				r, _ := f.exec(ctx, id, 30*time.Second, "cat", "/tmp/marker")
				return r.stdout
			}).WithTimeout(waitTimeout).Should(Equal("written-by-main\n"), "a file the container wrote")
			Expect(f.mustExec(ctx, id, "sh", "-c", "echo $KL_VAR")).To(Equal("from-config\n"), "the container's environment")
			Expect(f.mustExec(ctx, id, "cat", "/proc/self/cgroup")).To(Equal(f.mustExec(ctx, id, "cat", "/proc/1/cgroup")),
				"the command is in the container's cgroups")
		}, SpecTimeout(specTimeout))

		It("ends a command at its timeout", harness.Labels(CapExec), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "exec-timeout")
			id := f.running(ctx, sb, sbCfg, sleeper("main"))
			failed := make(chan bool, 1)
			go func() {
				r, err := f.exec(ctx, id, time.Second, "sleep", "600")
				failed <- err != nil || r.code != 0
			}()
			Eventually(ctx, failed).WithTimeout(waitTimeout).Should(Receive(BeTrue()),
				"ExecSync with a 1s timeout of `sleep 600` fails well before the command would end")
		}, SpecTimeout(specTimeout))
	})
}
