package process

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withPidMode sets the PID namespace mode of a container config.
func withPidMode(cfg *runtimeapi.ContainerConfig, m runtimeapi.NamespaceMode, target string) *runtimeapi.ContainerConfig {
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: m, TargetId: target}
	return cfg
}

func execOut(t *testing.T, r *Runtime, id string, cmd ...string) string {
	t.Helper()
	out, stderr, err := r.ExecSync(context.Background(), id, cmd, 10*time.Second)
	if err != nil {
		t.Fatalf("exec %q in %s: %v (stderr %q)", cmd, id, err, stderr)
	}
	return string(out)
}

// cmdlines lists the command lines of every process a container sees.
const cmdlines = `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f; echo; done`

func TestPodPIDNamespace(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	cfg := sandboxConfig("pidpod")
	cfg.LogDirectory = t.TempDir()
	cfg.Linux = nil // CRI's zero value: PID mode POD
	sb, err := r.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	st, err := r.PodSandboxStatus(ctx, sb, false)
	if err != nil || st.GetStatus().GetLinux().GetNamespaces().GetOptions().GetPid() != runtimeapi.NamespaceMode_POD {
		t.Fatalf("sandbox status: %v, %v; want PID mode POD", st, err)
	}
	r.mu.Lock()
	holder, holderStart := r.sandboxes[sb].PidHolder, r.sandboxes[sb].PidHolderStart
	r.mu.Unlock()
	if !processAlive(holder, holderStart) {
		t.Fatalf("no PID namespace holder running (pid %d)", holder)
	}
	a := startContainer(t, r, sb, cfg, withPidMode(containerConfig("a", "sleep", "3600"), runtimeapi.NamespaceMode_POD, ""))
	b := startContainer(t, r, sb, cfg, withPidMode(containerConfig("b", "sh", "-c", "sleep 3601 & wait"), runtimeapi.NamespaceMode_POD, ""))
	seen := execOut(t, r, a, "sh", "-c", cmdlines)
	for _, want := range []string{"sleep 3600", "sleep 3601", "sh -c sleep 3601 & wait"} {
		if !strings.Contains(seen, want) {
			t.Errorf("container a does not see %q in the pod's PID namespace:\n%s", want, seen)
		}
	}
	if init := execOut(t, r, b, "cat", "/proc/1/cmdline"); !strings.Contains(init, ShimCommand) {
		t.Errorf("PID 1 of the pod's namespace is %q, want the holder", init)
	}
	// `sleep` is not PID 1 here, so SIGTERM ends it (no grace period wait),
	// and the other container is untouched.
	begin := time.Now()
	if err := r.StopContainer(ctx, a, 60); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if st := waitExit(t, r, a); st.GetExitCode() != 128+15 {
		t.Errorf("exit code %d, want 143 (SIGTERM)", st.GetExitCode())
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("StopContainer took %v: SIGTERM did not end a non-PID-1 sleep", d)
	}
	if s, _ := r.ContainerStatus(ctx, b, false); s.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container b is %v after stopping a", s.GetStatus().GetState())
	}
	// Stopping b kills its child too (which does not die with b's sh).
	if err := r.StopContainer(ctx, b, 0); err != nil {
		t.Fatalf("StopContainer b: %v", err)
	}
	waitExit(t, r, b)
	r.mu.Lock()
	bCgroups := r.containers[b].Cgroups
	r.mu.Unlock()
	// Killed processes leave the cgroup once the holder reaped them.
	pids := cgroupPids(bCgroups)
	for deadline := time.Now().Add(5 * time.Second); len(pids) > 0 && time.Now().Before(deadline); pids = cgroupPids(bCgroups) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) != 0 {
		t.Errorf("processes left in container b's cgroup: %v", pids)
	}
	// A TARGET container joins a running container's namespace.
	c := startContainer(t, r, sb, cfg, withPidMode(containerConfig("c", "sleep", "3602"), runtimeapi.NamespaceMode_POD, ""))
	d := startContainer(t, r, sb, cfg, withPidMode(containerConfig("d", "sleep", "3603"), runtimeapi.NamespaceMode_TARGET, c))
	if seen := execOut(t, r, d, "sh", "-c", cmdlines); !strings.Contains(seen, "sleep 3602") {
		t.Errorf("TARGET container does not see its target:\n%s", seen)
	}
	if err := r.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	if processAlive(holder, holderStart) {
		t.Errorf("the PID namespace holder %d outlived its sandbox", holder)
	}
}

func TestContainerPIDNamespace(t *testing.T) {
	r := newTestRuntime(t)
	sb, cfg := runSandbox(t, r, "pidctr")
	a := startContainer(t, r, sb, cfg, containerConfig("a", "sleep", "3600"))
	startContainer(t, r, sb, cfg, containerConfig("b", "sleep", "3601"))
	seen := execOut(t, r, a, "sh", "-c", cmdlines)
	if strings.Contains(seen, "sleep 3601") {
		t.Errorf("container a sees container b's process:\n%s", seen)
	}
	if init := execOut(t, r, a, "cat", "/proc/1/cmdline"); init != "sleep\x003600\x00" {
		t.Errorf("PID 1 is %q, want the container's sleep", init)
	}
	ctx := context.Background()
	bad := withPidMode(containerConfig("t", "true"), runtimeapi.NamespaceMode_TARGET, "")
	_, err := r.CreateContainer(ctx, sb, bad, cfg)
	wantCode(t, "TARGET without a target", err, codes.InvalidArgument)
	badSb := sandboxConfig("pidtarget")
	badSb.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_TARGET
	_, err = r.RunPodSandbox(ctx, badSb, "")
	wantCode(t, "sandbox with PID mode TARGET", err, codes.InvalidArgument)
}
