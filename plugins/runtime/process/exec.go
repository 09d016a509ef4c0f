package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	utilexec "k8s.io/utils/exec"

	"github.com/kubelab/kubelab/spec/nsenter"
)

// maxExecOutput caps each of ExecSync's stdout and stderr.
const maxExecOutput = 16 << 20

// cappedBuffer keeps the first max bytes written and drops the rest.
type cappedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
	max int
}

// Write keeps what fits and reports everything written.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Bytes returns a copy of what was kept.
func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// ExecSync implements CRI: it runs cmd in the container's mount, network,
// UTS, IPC and PID namespaces (forked from a thread that joined them, see
// nsenter.Enter), with the container's capability bounding set, user,
// environment and working directory, and moves it into the container's
// cgroups right after it started. A non-zero exit is a k8s.io/utils/exec.CodeExitError, as
// k8s.io/cri-client returns it; a timeout is DeadlineExceeded.
func (r *Runtime) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	stdout := &cappedBuffer{max: maxExecOutput}
	stderr := &cappedBuffer{max: maxExecOutput}
	p, id, err := r.startInContainer(containerID, cmd, func(p *exec.Cmd) {
		p.Stdout, p.Stderr = stdout, stderr
		p.SysProcAttr.Setpgid = true
		// Background children that keep the output open do not hold
		// ExecSync beyond the command's own exit for long.
		p.WaitDelay = time.Second
	})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case err = <-done:
	case <-timer:
		_ = unix.Kill(-p.Process.Pid, unix.SIGKILL)
		<-done
		return stdout.Bytes(), stderr.Bytes(), status.Errorf(codes.DeadlineExceeded, "exec %q in container %q timed out after %v", strings.Join(cmd, " "), id, timeout)
	case <-ctx.Done():
		_ = unix.Kill(-p.Process.Pid, unix.SIGKILL)
		<-done
		return stdout.Bytes(), stderr.Bytes(), status.FromContextError(ctx.Err()).Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return stdout.Bytes(), stderr.Bytes(), utilexec.CodeExitError{
			Err:  fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, stderr.Bytes()),
			Code: code,
		}
	}
	if err != nil {
		return nil, nil, errInternal("exec in container %q: %v", id, err)
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}

// startInContainer starts cmd in a running container: in its mount,
// network, UTS, IPC and PID namespaces (forked from a thread that joined
// them, see nsenter.Enter), with the container's capability bounding set,
// user, environment and working directory, born in the container's
// cgroups. setup sets the command's stdio and process attributes. It
// returns the started command and the container's full ID.
func (r *Runtime) startInContainer(containerID string, cmd []string, setup func(*exec.Cmd)) (*exec.Cmd, string, error) {
	if len(cmd) == 0 {
		return nil, "", status.Error(codes.InvalidArgument, "exec: empty command")
	}
	r.mu.Lock()
	c, err := r.lookupContainerLocked(containerID)
	if err != nil {
		r.mu.Unlock()
		return nil, "", err
	}
	r.refreshLocked(c)
	if c.State != stateRunning {
		st := c.State
		r.mu.Unlock()
		return nil, "", status.Errorf(codes.FailedPrecondition, "container %q is %s, not running", c.ID, st)
	}
	pid, pidStart, cgroups, id := c.Pid, c.PidStart, c.Cgroups, c.ID
	r.mu.Unlock()
	sp, err := readShimSpec(r.containerDir(id))
	if err != nil {
		return nil, id, errInternal("exec in %q: %v", id, err)
	}

	cwd := sp.Cwd
	if cwd == "" {
		cwd = "/"
	}
	p := &exec.Cmd{
		Args: cmd, Env: sp.Env, Dir: cwd,
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: sp.User.UID, Gid: sp.User.GID, Groups: sp.User.Groups,
		}},
	}
	setup(p)
	var nss []nsenter.Namespace
	for _, n := range []struct {
		name string
		typ  int
	}{{"mnt", unix.CLONE_NEWNS}, {"net", unix.CLONE_NEWNET}, {"uts", unix.CLONE_NEWUTS}, {"ipc", unix.CLONE_NEWIPC}, {"pid", unix.CLONE_NEWPID}} {
		nss = append(nss, nsenter.Namespace{Path: fmt.Sprintf("/proc/%d/ns/%s", pid, n.name), Type: n.typ})
	}
	if processStartTime(pid) != pidStart {
		return nil, id, status.Errorf(codes.FailedPrecondition, "container %q is not running", id)
	}
	// The command must be in the container's cgroups from its first
	// instruction (a command that is moved after it started runs unlimited
	// for a while, and sees the host's cgroups): open them here, where
	// their paths resolve.
	join, closeCgroups, err := openCgroupsForExec(cgroups, p.SysProcAttr)
	if err != nil {
		return nil, id, errInternal("exec in %q: %v", id, err)
	}
	defer closeCgroups()
	// On a thread in all the container's namespaces (its mount namespace
	// too) with the container's capability bounding set: the process
	// started there is as confined as the container's own.
	var notFound error
	err = nsenter.Enter(nss, func() error {
		path, err := lookPath(cmd[0], sp.Env)
		if err != nil {
			notFound = err
			return nil
		}
		p.Path = path
		if !sp.Privileged {
			if err := dropBoundingCaps(sp.Caps); err != nil {
				return err
			}
		}
		if err := join(); err != nil {
			return err
		}
		return p.Start()
	})
	if notFound != nil {
		return nil, id, status.Errorf(codes.InvalidArgument, "exec in container %q: %v", id, notFound)
	}
	if err != nil {
		return nil, id, status.Errorf(codes.Unknown, "exec %q in container %q: %v", cmd[0], id, err)
	}
	_ = addToCgroups(cgroups, p.Process.Pid)
	return p, id, nil
}

// openCgroupsForExec prepares starting a process directly in the cgroups
// (controller -> directory, "" for cgroup v2): for v2 it sets attr to
// clone the process into the cgroup; for v1 the returned join moves the
// calling thread (a thread that is discarded afterwards, as nsenter.Enter's
// is) into every controller's cgroup, so that the processes it starts are
// born there. The files are opened now, while their paths resolve; close
// releases them.
func openCgroupsForExec(cgroups map[string]string, attr *syscall.SysProcAttr) (join func() error, release func(), err error) {
	var fds []int
	release = func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if dir, ok := cgroups[""]; ok {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, release, fmt.Errorf("open cgroup %q: %w", dir, err)
		}
		fds = append(fds, fd)
		attr.UseCgroupFD, attr.CgroupFD = true, fd
		return func() error { return nil }, release, nil
	}
	for _, dir := range cgroups {
		fd, err := unix.Open(filepath.Join(dir, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			release()
			return nil, func() {}, fmt.Errorf("open cgroup %q: %w", dir, err)
		}
		fds = append(fds, fd)
	}
	return func() error {
		tid := []byte(strconv.Itoa(unix.Gettid()))
		for _, fd := range fds {
			if _, err := unix.Write(fd, tid); err != nil {
				return fmt.Errorf("join the container's cgroups: %w", err)
			}
		}
		return nil
	}, release, nil
}

var _ io.Writer = (*cappedBuffer)(nil)
