package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec/procstat"
)

func TestMemoryLimitOOMKilled(t *testing.T) {
	r := newTestRuntime(t)
	sb, sbCfg := runSandbox(t, r, "oom")
	// tail keeps the whole "line" of /dev/zero in memory.
	cfg := containerConfig("hog", "sh", "-c", "tail /dev/zero")
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000}}
	id := startContainer(t, r, sb, sbCfg, cfg)
	st := waitExit(t, r, id)
	if st.Reason != ReasonOOMKilled || st.ExitCode != 137 {
		t.Errorf("status: exit %d reason %q message %q, want 137 %q", st.ExitCode, st.Reason, st.Message, ReasonOOMKilled)
	}
}

func TestStopGrace(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "grace")

	// A workload that handles SIGTERM exits with its own code.
	handles := containerConfig("handles", "sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo started; while true; do sleep 0.05; done`)
	id := startContainer(t, r, sb, sbCfg, handles)
	waitLog(t, sbCfg, handles, "started")
	if err := r.StopContainer(ctx, id, 30); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, r, id)
	if st.ExitCode != 7 || !strings.Contains(readLog(t, sbCfg, handles), "got TERM") {
		t.Errorf("SIGTERM handler: exit %d, log %q", st.ExitCode, readLog(t, sbCfg, handles))
	}

	// PID 1 without a handler ignores SIGTERM: SIGKILL after the timeout.
	ignores := containerConfig("ignores", "sleep", "1000")
	id = startContainer(t, r, sb, sbCfg, ignores)
	if err := r.StopContainer(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	st = waitExit(t, r, id)
	if st.ExitCode != 137 || st.Reason != ReasonError {
		t.Errorf("after the grace period: exit %d reason %q, want 137 (SIGKILL)", st.ExitCode, st.Reason)
	}
	if err := r.StopContainer(ctx, id, 1); err != nil {
		t.Errorf("stopping an exited container: %v", err)
	}
}

// waitLog waits until the container's log contains s.
func waitLog(t *testing.T, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig, s string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if b, _ := os.ReadFile(filepath.Join(sbCfg.LogDirectory, cfg.LogPath)); strings.Contains(string(b), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never contained %q", s)
}

func TestErrors(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "errors")
	running := startContainer(t, r, sb, sbCfg, containerConfig("running", "sleep", "1000"))
	bad, err := r.CreateContainer(ctx, sb, containerConfig("bad", "/no/such/binary"), sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "0000000000000000000000000000000000000000000000000000000000000000"
	cases := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"status of unknown container", func() error { _, err := r.ContainerStatus(ctx, unknown, false); return err }, codes.NotFound},
		{"start unknown container", func() error { return r.StartContainer(ctx, unknown) }, codes.NotFound},
		{"stop unknown container is idempotent", func() error { return r.StopContainer(ctx, unknown, 0) }, codes.OK},
		{"exec in unknown container", func() error { _, _, err := r.ExecSync(ctx, unknown, []string{"true"}, 0); return err }, codes.NotFound},
		{"status of unknown sandbox", func() error { _, err := r.PodSandboxStatus(ctx, unknown, false); return err }, codes.NotFound},
		{"stop unknown sandbox is idempotent", func() error { return r.StopPodSandbox(ctx, unknown) }, codes.OK},
		{"run as group without a user", func() error {
			c := containerConfig("groupnouser", "true")
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 5}}}
			_, err := r.CreateContainer(ctx, sb, c, sbCfg)
			return err
		}, codes.InvalidArgument},
		{"remove unknown sandbox is idempotent", func() error { return r.RemovePodSandbox(ctx, unknown) }, codes.OK},
		{"remove unknown container is idempotent", func() error { return r.RemoveContainer(ctx, unknown) }, codes.OK},
		{"create in unknown sandbox", func() error {
			_, err := r.CreateContainer(ctx, unknown, containerConfig("x", "true"), sbCfg)
			return err
		}, codes.NotFound},
		{"create from unknown image", func() error {
			c := containerConfig("noimage", "true")
			c.Image.Image = "example.com/nope:1"
			_, err := r.CreateContainer(ctx, sb, c, sbCfg)
			return err
		}, codes.NotFound},
		{"create with a taken name", func() error {
			_, err := r.CreateContainer(ctx, sb, containerConfig("running", "true"), sbCfg)
			return err
		}, codes.AlreadyExists},
		{"sandbox with a taken name", func() error { _, err := r.RunPodSandbox(ctx, sbCfg, ""); return err }, codes.AlreadyExists},
		{"pull an image not present", func() error {
			_, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "example.com/nope:1"}, nil, nil)
			return err
		}, codes.NotFound},
		{"start a started container", func() error { return r.StartContainer(ctx, running) }, codes.FailedPrecondition},
		{"start a command that does not exist", func() error { return r.StartContainer(ctx, bad) }, codes.Unknown},
		{"an optional method", func() error { return r.CheckpointContainer(ctx, nil) }, codes.Unimplemented},
		{"attach to an unknown container", func() error {
			_, err := r.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "nope", Stdout: true})
			return err
		}, codes.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.name, c.call(), c.code) })
	}
	// CRI: a running container is removed forcibly.
	if err := r.RemoveContainer(ctx, running); err != nil {
		t.Errorf("remove a running container: %v", err)
	}
	_, err = r.ContainerStatus(ctx, running, false)
	wantCode(t, "status of a removed container", err, codes.NotFound)
	st, err := r.ContainerStatus(ctx, bad, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Status; s.State != runtimeapi.ContainerState_CONTAINER_EXITED || s.Reason != ReasonStartError || !strings.Contains(s.Message, "/no/such/binary") {
		t.Errorf("container that could not start: %v", s)
	}
	img, err := r.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: "example.com/nope:1"}, false)
	if err != nil || img.Image != nil {
		t.Errorf("ImageStatus of an absent image = %v, %v; want no image, no error", img, err)
	}
	if err := r.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	_, err = r.CreateContainer(ctx, sb, containerConfig("late", "true"), sbCfg)
	wantCode(t, "create in a stopped sandbox", err, codes.FailedPrecondition)
}

func TestRestartFindsRunningContainers(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "restart")
	cfg := containerConfig("survivor", "sh", "-c", `trap 'echo bye; exit 3' TERM; echo hi; while true; do sleep 0.05; done`)
	id := startContainer(t, r, sb, sbCfg, cfg)
	exited := startContainer(t, r, sb, sbCfg, containerConfig("quick", "sh", "-c", "exit 5"))
	waitLog(t, sbCfg, cfg, "hi")

	// A new runtime over the same root, as after a restart of the process.
	r2, err := New(ctx, Config{RootDir: r.RootDir(), Images: r.images, Network: r.network, Instance: r.Instance()})
	if err != nil {
		t.Fatal(err)
	}
	sbs, err := r2.ListPodSandbox(ctx, nil)
	if err != nil || len(sbs) != 1 || sbs[0].Id != sb || sbs[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("sandboxes after restart: %v, %v", sbs, err)
	}
	st, err := r2.ContainerStatus(ctx, id, false)
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container after restart: %v, %v", st, err)
	}
	if got := waitExit(t, r2, exited); got.ExitCode != 5 {
		t.Errorf("exit code recorded across the restart: %d", got.ExitCode)
	}
	out, _, err := r2.ExecSync(ctx, id, []string{"echo", "still here"}, 5*time.Second)
	if err != nil || string(out) != "still here\n" {
		t.Errorf("exec after restart: %q, %v", out, err)
	}
	if err := r2.StopContainer(ctx, id, 10); err != nil {
		t.Fatal(err)
	}
	if got := waitExit(t, r2, id); got.ExitCode != 3 {
		t.Errorf("exit after restart: %d", got.ExitCode)
	}
	if err := r2.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
}

// TestNoLeaks runs sandboxes and containers through their whole life and
// checks that nothing they made on the host remains.
func TestNoLeaks(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	var pids []int
	var veths []string
	for i := 0; i < 3; i++ {
		sb, sbCfg := runSandbox(t, r, "leak")
		veths = append(veths, vethName(sb))
		r.mu.Lock()
		sbCfg.Metadata = r.sandboxes[sb].config.Metadata
		r.mu.Unlock()
		id := startContainer(t, r, sb, sbCfg, containerConfig("c", "sleep", "1000"))
		_, _, _ = r.ExecSync(ctx, id, []string{"true"}, time.Second)
		r.mu.Lock()
		pids = append(pids, r.containers[id].Pid, r.containers[id].ShimPid)
		r.mu.Unlock()
		if i == 0 {
			if err := r.StopContainer(ctx, id, 0); err != nil {
				t.Fatal(err)
			}
		}
		if i == 1 {
			if err := r.StopPodSandbox(ctx, sb); err != nil {
				t.Fatal(err)
			}
		}
	}
	removeEverything(t, r)

	if mounts := mountsUnder(t, r.RootDir()); len(mounts) > 0 {
		t.Errorf("mounts left under %s: %v", r.RootDir(), mounts)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.RootDir(), "netns")); len(ents) > 0 {
		t.Errorf("netns files left: %v", ents)
	}
	for c, d := range r.cgroups.dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left in %s", d, c)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		// Only this runtime's: other tests may run beside this one.
		if n := l.Attrs().Name; n == bridgeName(r.Instance()) || slices.Contains(veths, n) {
			t.Errorf("link %s left", n)
		}
	}
	// Every thread of this process is back in the host's namespaces (the
	// threads nsenter discards may take a moment to end).
	for i := 0; ; i++ {
		var foreign []string
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			for ns, want := range hostNamespaces {
				if got, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/" + ns); err == nil && got != want {
					foreign = append(foreign, task.Name()+":"+got)
				}
			}
		}
		if len(foreign) == 0 {
			break
		}
		if i == 100 {
			t.Errorf("threads left in other namespaces: %v", foreign)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range pids {
		if st, err := procstat.Read(pid); err == nil && st.State != 'Z' {
			t.Errorf("process %d left: %+v", pid, st)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// mountsUnder lists the mount points below dir in this mount namespace.
func mountsUnder(t *testing.T, dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && strings.HasPrefix(fs[4], dir) {
			out = append(out, fs[4])
		}
	}
	return out
}

// TestPodNetworkReachable: the host reaches a server in a pod at the pod's
// IP through the bridge, and the container sees the sandbox's eth0.
func TestPodNetworkReachable(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "net")
	id := startContainer(t, r, sb, sbCfg, containerConfig("server", "sh", "-c", "while true; do echo hello | nc -l -p 8080; done"))
	st, err := r.PodSandboxStatus(ctx, sb, false)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := r.ExecSync(ctx, id, []string{"grep", "-c", "eth0", "/proc/net/dev"}, 5*time.Second)
	if err != nil || string(out) != "1\n" {
		t.Errorf("eth0 in the container: %q, %v", out, err)
	}
	addr := net.JoinHostPort(st.Status.Network.Ip, "8080")
	var got string
	for i := 0; i < 250 && got == ""; i++ {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(conn)
		conn.Close()
		got = string(b)
	}
	if got != "hello\n" {
		t.Errorf("from %s: %q", addr, got)
	}
}

// TestConcurrentStartsAndSandboxStop: containers started while their
// sandbox is being stopped either fail to start or are stopped with it.
func TestConcurrentStartsAndSandboxStop(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "race")
	var ids []string
	for i := 0; i < 6; i++ {
		id, err := r.CreateContainer(ctx, sb, containerConfig("c"+strconv.Itoa(i), "sleep", "1000"), sbCfg)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.StartContainer(ctx, id) }()
	}
	if err := r.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, id := range ids {
		st, err := r.ContainerStatus(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %s runs in a stopped sandbox", id)
		}
	}
}

// TestShimDeathIsReported: a container whose shim and init were killed
// without an exit record is EXITED with reason Unknown, not RUNNING.
func TestShimDeathIsReported(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "shimdeath")
	id := startContainer(t, r, sb, sbCfg, containerConfig("victim", "sleep", "1000"))
	r.mu.Lock()
	shim, init := r.containers[id].ShimPid, r.containers[id].Pid
	r.mu.Unlock()
	for _, pid := range []int{shim, init} {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	st := waitExit(t, r, id)
	if st.Reason != ReasonUnknown || st.ExitCode != 255 {
		t.Errorf("status after the shim died: exit %d reason %q", st.ExitCode, st.Reason)
	}
	if err := r.RemoveContainer(ctx, id); err != nil {
		t.Error(err)
	}
}

// failingNetwork fails every Setup and counts Teardowns.
type failingNetwork struct{ teardowns atomic.Int32 }

func (n *failingNetwork) Setup(context.Context, string, string) (string, error) {
	return "", errors.New("no addresses today")
}

func (n *failingNetwork) Teardown(context.Context, string, string) error {
	n.teardowns.Add(1)
	return nil
}

// TestFailedSandboxLeavesNothing: a sandbox whose network cannot be set up
// is not created, and what was made for it is gone.
func TestFailedSandboxLeavesNothing(t *testing.T) {
	root := t.TempDir()
	net := &failingNetwork{}
	r, err := New(context.Background(), Config{RootDir: root, Images: fakeImages{busyboxRootfs}, Network: net, Instance: fmt.Sprintf("f%d", os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeEverything(t, r) })
	_, err = r.RunPodSandbox(context.Background(), sandboxConfig("nonet"), "")
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "no addresses today") {
		t.Fatalf("RunPodSandbox = %v, want Internal with the network's error", err)
	}
	if net.teardowns.Load() != 1 {
		t.Errorf("Teardown called %d times, want 1", net.teardowns.Load())
	}
	for _, d := range []string{"netns", "sandboxes"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("%s left: %v", d, ents)
		}
	}
	for _, d := range r.cgroups.dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left", d)
		}
	}
	if sbs, _ := r.ListPodSandbox(context.Background(), nil); len(sbs) != 0 {
		t.Errorf("sandboxes listed: %v", sbs)
	}
	// The name is free again.
	if _, err := r.RunPodSandbox(context.Background(), sandboxConfig("nonet"), ""); status.Code(err) == codes.AlreadyExists {
		t.Errorf("the failed sandbox's name stays reserved")
	}
}
