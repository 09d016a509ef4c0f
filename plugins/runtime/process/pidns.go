package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rolePidHolder is the role of the process that holds a sandbox's pod-wide
// PID namespace (PID mode POD): PID 1 of that namespace, it reaps the
// orphans of the pod's containers and lives until the sandbox stops, like
// containerd's pause process.
const rolePidHolder = "pid-holder"

// pidRef names a process by PID and start time (see processStartTime), so
// that a recycled PID is never taken for it.
type pidRef struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// startPidHolder starts the PID-namespace holder of sandbox id, in a new
// PID namespace and a session of its own, and returns its PID and start
// time. It outlives the runtime process, as shims do.
func (r *Runtime) startPidHolder(id string) (int, uint64, error) {
	logf, err := os.OpenFile(filepath.Join(r.sandboxDir(id), "pid-holder.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer logf.Close()
	cmd := &exec.Cmd{
		Path:   "/proc/self/exe",
		Args:   []string{"kubelab", "runtime", ShimCommand, r.sandboxDir(id)},
		Env:    []string{roleEnv + "=" + rolePidHolder},
		Dir:    "/",
		Stdout: logf,
		Stderr: logf,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid:     true,
			Cloneflags: syscall.CLONE_NEWPID,
		},
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start the PID namespace holder: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped when the sandbox stops
	pid := cmd.Process.Pid
	start := processStartTime(pid)
	if start == 0 {
		return 0, 0, errors.New("the PID namespace holder ended at once")
	}
	return pid, start, nil
}

// stopPidHolder kills a sandbox's PID-namespace holder, which ends every
// process left in the pod's PID namespace (the kernel kills them with their
// namespace's PID 1), and waits until it is gone.
func stopPidHolder(s *sandbox) error {
	if s.PidHolder == 0 {
		return nil
	}
	if err := signalProcess(s.PidHolder, s.PidHolderStart, unix.SIGKILL); err != nil {
		return fmt.Errorf("kill the PID namespace holder: %w", err)
	}
	for deadline := time.Now().Add(killWait); processAlive(s.PidHolder, s.PidHolderStart); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the PID namespace holder %d did not end within %v of SIGKILL", s.PidHolder, killWait)
		}
	}
	s.PidHolder, s.PidHolderStart = 0, 0
	return nil
}

// sandboxPidMode is the PID namespace mode a sandbox reports (NODE is
// handled by the caller).
func sandboxPidMode(s *sandbox) runtimeapi.NamespaceMode {
	if s.SharedPID {
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

// containerPidNSLocked resolves a container's PID namespace mode (called with
// r.mu held): host reports the host's namespace, join a process whose PID
// namespace the container enters; neither means a namespace of its own.
func (r *Runtime) containerPidNSLocked(s *sandbox, cfg *runtimeapi.ContainerConfig) (host bool, join *pidRef, err error) {
	opts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if s.HostPID {
		return true, nil, nil
	}
	switch m := opts.GetPid(); m {
	case runtimeapi.NamespaceMode_NODE:
		return true, nil, nil
	case runtimeapi.NamespaceMode_CONTAINER:
		return false, nil, nil
	case runtimeapi.NamespaceMode_POD:
		if !s.SharedPID {
			// The sandbox was created with PID mode CONTAINER: there is no
			// pod-wide namespace to join (the kubelet always sends the
			// sandbox's mode to its containers; this is a caller that
			// left the container's mode at CRI's zero value).
			return false, nil, nil
		}
		if !processAlive(s.PidHolder, s.PidHolderStart) {
			return false, nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %q: the holder of its PID namespace is gone", s.ID)
		}
		return false, &pidRef{Pid: s.PidHolder, Start: s.PidHolderStart}, nil
	case runtimeapi.NamespaceMode_TARGET:
		tid := opts.GetTargetId()
		if tid == "" {
			return false, nil, status.Error(codes.InvalidArgument, "PID namespace mode TARGET needs a target container ID")
		}
		t, err := r.lookupContainerLocked(tid)
		if err != nil {
			return false, nil, status.Errorf(codes.InvalidArgument, "PID namespace target: %v", err)
		}
		if t.SandboxID != s.ID {
			return false, nil, status.Errorf(codes.InvalidArgument, "PID namespace target %q is in another pod sandbox", tid)
		}
		r.refreshLocked(t)
		if t.State != stateRunning {
			return false, nil, status.Errorf(codes.FailedPrecondition, "PID namespace target %q is not running", tid)
		}
		return false, &pidRef{Pid: t.Pid, Start: t.PidStart}, nil
	default:
		return false, nil, status.Errorf(codes.InvalidArgument, "PID namespace mode %v is not supported", m)
	}
}

// cgroupPids lists the processes (host PIDs) in a container's cgroups.
func cgroupPids(paths map[string]string) []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, _ := strconv.Atoi(f); pid > 0 && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// killCgroup sends SIGKILL to every process in the cgroups: what is left of
// a container that shares a PID namespace (whose end does not take its
// descendants with it, as the end of a PID 1 does).
//
// Only processes whose main thread is in the cgroups are killed: with
// cgroup v1 a thread of the runtime joins a container's cgroups to start
// an exec there (see openCgroupsForExec), which lists the whole runtime
// process in cgroup.procs for a while.
func killCgroup(paths map[string]string) {
	for _, pid := range cgroupPids(paths) {
		if pid == os.Getpid() || !mainThreadIn(pid, paths) {
			continue
		}
		_ = signalProcess(pid, processStartTime(pid), unix.SIGKILL)
	}
}

// mainThreadIn reports whether a process's main thread is in one of the
// cgroups (/proc/PID/cgroup is about the thread-group leader); the
// container's cgroup directories all end in its ID.
func mainThreadIn(pid int, paths map[string]string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, p := range paths {
		suffix := "/" + filepath.Base(p)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(line, suffix) {
				return true
			}
		}
	}
	return false
}

// runPidHolder is the PID-namespace holder's main: PID 1 of the pod's PID
// namespace, it reaps every orphan until it is killed.
func runPidHolder() int {
	// As PID 1 the kernel delivers only signals with a handler; ignoring
	// them keeps the holder alive until SIGKILL.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-chld
	}
}
