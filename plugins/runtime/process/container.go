package process

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/nsenter"
	"github.com/kubelab/kubelab/spec/procstat"
)

// Container state names as persisted.
var (
	stateCreated = runtimeapi.ContainerState_CONTAINER_CREATED.String()
	stateRunning = runtimeapi.ContainerState_CONTAINER_RUNNING.String()
	stateExited  = runtimeapi.ContainerState_CONTAINER_EXITED.String()
)

// Exit reasons in ContainerStatus.Reason, as containerd reports them.
const (
	// ReasonCompleted: the process exited with code 0.
	ReasonCompleted = "Completed"
	// ReasonError: the process exited non-zero or was killed by a signal.
	ReasonError = "Error"
	// ReasonOOMKilled: the kernel's OOM killer ended the process at its
	// memory limit (exit code 137).
	ReasonOOMKilled = "OOMKilled"
	// ReasonStartError: the process could not be started (exit code 128,
	// the cause in Message).
	ReasonStartError = "StartError"
	// ReasonUnknown: the shim ended without recording an exit status
	// (exit code 255).
	ReasonUnknown = "Unknown"
)

// containerArgs applies Kubernetes semantics: the container's command
// replaces the image's Entrypoint (and drops its Cmd); its args replace Cmd.
func containerArgs(entrypoint, cmd, command, args []string) []string {
	if len(command) > 0 {
		return append(append([]string{}, command...), args...)
	}
	if len(args) > 0 {
		return append(append([]string{}, entrypoint...), args...)
	}
	return append(append([]string{}, entrypoint...), cmd...)
}

// mergeEnv returns base with over's variables replacing same-named ones.
func mergeEnv(base []string, over []*runtimeapi.KeyValue) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		replaced := false
		for i, e := range out {
			if k, _, _ := strings.Cut(e, "="); k == kv.Key {
				out[i] = kv.Key + "=" + string(kv.Value)
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv.Key+"="+string(kv.Value))
		}
	}
	return out
}

// CreateContainer implements CRI: it resolves the image, the command and
// the environment, creates the container's cgroup with its limits and
// writes its state; nothing runs until StartContainer.
//
// In order: reserveContainer checks the sandbox and reserves the name (and
// the PID namespace choice) under the lock; the image is resolved and
// unpacked; the container's directory and cgroup are made; newShimSpec
// decides what the shim will run; the spec and the state are written. A
// failure at any step undoes the earlier ones.
func (r *Runtime) CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (_ string, err error) {
	md := config.GetMetadata()
	if md.GetName() == "" {
		return "", status.Error(codes.InvalidArgument, "container config has no metadata name")
	}
	ref := config.GetImage().GetImage()
	if ref == "" {
		return "", status.Error(codes.InvalidArgument, "container config names no image")
	}
	slot, err := r.reserveContainer(podSandboxID, config)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			r.mu.Lock()
			delete(r.names, slot.nameKey)
			r.mu.Unlock()
		}
	}()

	img, rootfs, err := r.containerImage(ctx, ref)
	if err != nil {
		return "", err
	}
	raw, err := protojson.Marshal(config)
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "container config: %v", err)
	}
	logPath := ""
	if config.GetLogPath() != "" {
		logPath = filepath.Join(slot.sbConfig.GetLogDirectory(), config.GetLogPath())
	}
	c := &container{config: config, containerState: containerState{
		ID: slot.id, SandboxID: slot.sandboxID, Config: raw, ImageRef: ref, ImageID: img.ID, State: stateCreated,
		CreatedAt: time.Now().UnixNano(), LogPath: logPath, StopSignal: img.Config.StopSignal,
	}}
	dir := r.containerDir(slot.id)
	defer func() {
		if err != nil {
			_ = removeCgroups(c.Cgroups)
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", errInternal("container directory: %v", err)
	}
	if c.Cgroups, err = r.cgroups.create("pod-"+slot.sandboxID+"/"+slot.id, containerResources(config)); err != nil {
		return "", errInternal("container cgroup: %v", err)
	}
	sp, err := newShimSpec(slot, config, img, rootfs, c.Cgroups, logPath)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return "", errInternal("container spec: %v", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "spec.json"), b); err != nil {
		return "", errInternal("container spec: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.saveContainerLocked(c); err != nil {
		return "", errInternal("container state: %v", err)
	}
	r.containers[slot.id] = c
	return slot.id, nil
}

// containerSlot is what CreateContainer reserved and copied from the
// sandbox under the lock, so that the rest runs without it.
type containerSlot struct {
	id, sandboxID string
	// nameKey is the container's reserved name in r.names, released if the
	// create fails.
	nameKey string

	sbConfig *runtimeapi.PodSandboxConfig
	sbDir    string
	sbIP     string

	hostNet, hostIPC, hostPID bool
	joinPID                   *pidRef
}

// reserveContainer checks that the sandbox exists and is ready, reserves
// the container's name in it (codes.AlreadyExists when taken) with a new
// ID, and decides its PID namespace.
func (r *Runtime) reserveContainer(podSandboxID string, config *runtimeapi.ContainerConfig) (containerSlot, error) {
	md := config.GetMetadata()
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.lookupSandboxLocked(podSandboxID)
	if err != nil {
		return containerSlot{}, err
	}
	if !s.Ready {
		return containerSlot{}, status.Errorf(codes.FailedPrecondition, "pod sandbox %q is not ready", s.ID)
	}
	id := newID()
	key := containerNameKey(s.ID, md)
	if other, dup := r.names[key]; dup {
		return containerSlot{}, status.Errorf(codes.AlreadyExists, "container name %q (attempt %d) in sandbox %q is reserved for container %q", md.GetName(), md.GetAttempt(), s.ID, other)
	}
	hostPID, joinPID, err := r.containerPidNSLocked(s, config)
	if err != nil {
		return containerSlot{}, err
	}
	r.names[key] = id
	return containerSlot{
		id: id, sandboxID: s.ID, nameKey: key,
		sbConfig: s.config, sbDir: r.sandboxDir(s.ID), sbIP: s.IP,
		hostNet: s.HostNetwork, hostIPC: s.HostIPC, hostPID: hostPID, joinPID: joinPID,
	}, nil
}

// containerImage resolves ref in the image store and returns the image and
// its unpacked root filesystem; an unknown image is codes.NotFound.
func (r *Runtime) containerImage(ctx context.Context, ref string) (imagestore.Image, string, error) {
	img, err := r.images.Get(ref)
	if err != nil {
		if errors.Is(err, spec.ErrNotFound) {
			return imagestore.Image{}, "", status.Errorf(codes.NotFound, "image %q not found: %v", ref, err)
		}
		return imagestore.Image{}, "", errInternal("image %q: %v", ref, err)
	}
	rootfs, err := r.images.Unpacked(ctx, img.ID)
	if err != nil {
		return imagestore.Image{}, "", errInternal("unpack image %q: %v", ref, err)
	}
	return img, rootfs, nil
}

// containerResources are the cgroup limits config asks for.
func containerResources(config *runtimeapi.ContainerConfig) cgroupResources {
	lr := config.GetLinux().GetResources()
	if lr == nil {
		return cgroupResources{}
	}
	return cgroupResources{CPUShares: lr.CpuShares, CPUQuota: lr.CpuQuota, CPUPeriod: lr.CpuPeriod, MemoryLimit: lr.MemoryLimitInBytes}
}

// newShimSpec decides what the shim runs for a container: the command,
// environment and working directory from the image and config, the
// namespaces it shares, its user and capabilities (codes.InvalidArgument
// when config asks for what cannot be), the IPC sysctls of the sandbox,
// and its mounts — config's, then the sandbox's hosts, hostname and
// resolv.conf files unless config mounts those paths itself.
func newShimSpec(slot containerSlot, config *runtimeapi.ContainerConfig, img imagestore.Image, rootfs string, cgroups map[string]string, logPath string) (shimSpec, error) {
	hostname := sandboxHostname(slot.sbConfig)
	cwd := config.GetWorkingDir()
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	sp := shimSpec{
		ID: slot.id, Rootfs: rootfs,
		Args:     containerArgs(img.Config.Entrypoint, img.Config.Cmd, config.GetCommand(), config.GetArgs()),
		Env:      mergeEnv(img.Config.Env, config.GetEnvs()),
		Cwd:      cwd,
		Hostname: hostname,
		Cgroups:  cgroups,
		LogPath:  logPath,

		ReadonlyRootfs: config.GetLinux().GetSecurityContext().GetReadonlyRootfs(),
		// With the host's network, the host's UTS namespace too, like
		// containerd (the hostname is the node's).
		HostUTS: slot.hostNet,
		HostPID: slot.hostPID,
		JoinPID: slot.joinPID,
		HostIPC: slot.hostIPC,

		Stdin:     config.GetStdin(),
		StdinOnce: config.GetStdinOnce(),
	}
	for k, v := range slot.sbConfig.GetLinux().GetSysctls() {
		if sysctlScope(k) == "ipc" {
			if sp.Sysctls == nil {
				sp.Sysctls = map[string]string{}
			}
			sp.Sysctls[k] = v
		}
	}
	if !hasEnv(sp.Env, "PATH") {
		sp.Env = append([]string{"PATH=" + defaultPath}, sp.Env...)
	}
	if !hasEnv(sp.Env, "HOSTNAME") {
		sp.Env = append(sp.Env, "HOSTNAME="+hostname)
	}
	for _, m := range config.GetMounts() {
		if m.GetHostPath() == "" || m.GetContainerPath() == "" {
			continue
		}
		sp.Mounts = append(sp.Mounts, mountSpec{HostPath: m.HostPath, ContainerPath: m.ContainerPath, Readonly: m.Readonly})
	}
	name := config.GetMetadata().GetName()
	var err error
	if sp.User, err = resolveUser(rootfs, img.Config.User, config.GetLinux().GetSecurityContext()); err != nil {
		return shimSpec{}, status.Errorf(codes.InvalidArgument, "container %q: %v", name, err)
	}
	if sp.Caps, sp.Privileged, err = containerCaps(config.GetLinux().GetSecurityContext()); err != nil {
		return shimSpec{}, status.Errorf(codes.InvalidArgument, "container %q: %v", name, err)
	}
	// hosts, hostname and resolv.conf from the sandbox, unless mounted.
	sbMounts, err := sandboxFiles(slot.sbDir, slot.sbIP, slot.sbConfig)
	if err != nil {
		return shimSpec{}, errInternal("sandbox files: %v", err)
	}
	for _, m := range sbMounts {
		taken := false
		for _, o := range sp.Mounts {
			taken = taken || filepath.Clean(o.ContainerPath) == m.ContainerPath
		}
		if !taken {
			sp.Mounts = append(sp.Mounts, m)
		}
	}
	return sp, nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

// shimStartTimeout bounds how long StartContainer waits for the shim's
// start report.
const shimStartTimeout = 30 * time.Second

// StartContainer implements CRI: it starts the container's shim in the
// sandbox's network namespace and waits until the workload was exec'ed. A
// workload that cannot start leaves the container EXITED with reason
// StartError and the cause as its message, and StartContainer fails.
func (r *Runtime) StartContainer(ctx context.Context, containerID string) error {
	r.mu.Lock()
	c, err := r.lookupContainerLocked(containerID)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if c.State != stateCreated || c.busy {
		st := c.State
		r.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "container %q is %s, not CONTAINER_CREATED: it can be started only once", c.ID, st)
	}
	s, ok := r.sandboxes[c.SandboxID]
	if !ok || !s.Ready {
		r.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "container %q: pod sandbox %q is not ready", c.ID, c.SandboxID)
	}
	c.busy = true
	netns := s.NetNS
	r.mu.Unlock()

	rep, shimPid, err := r.startShim(c.ID, netns)
	r.mu.Lock()
	defer r.mu.Unlock()
	c.busy = false
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	if err != nil {
		c.State = stateExited
		c.ExitCode = 128
		c.Reason = ReasonStartError
		c.Message = err.Error()
		c.FinishedAt = time.Now().UnixNano()
		_ = r.saveContainerLocked(c)
		return status.Errorf(codes.Unknown, "start container %q: %v", c.ID, err)
	}
	c.State = stateRunning
	c.Pid, c.PidStart, c.StartedAt = rep.Pid, rep.PidStart, rep.StartedAt
	c.ShimPid, c.ShimStart = shimPid, processStartTime(shimPid)
	if err := r.saveContainerLocked(c); err != nil {
		return errInternal("container state: %v", err)
	}
	return nil
}

// startShim re-executes the runtime binary as the container's shim, in the
// network namespace, in a session of its own, and reads its start report.
func (r *Runtime) startShim(id, netns string) (startReport, int, error) {
	var rep startReport
	dir := r.containerDir(id)
	repR, repW, err := os.Pipe()
	if err != nil {
		return rep, 0, err
	}
	defer repR.Close()
	logf, err := os.OpenFile(filepath.Join(dir, "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		repW.Close()
		return rep, 0, err
	}
	defer logf.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		// The arguments reach `kubelab runtime process-shim` in a binary
		// whose main does not call RunInitIfRequested.
		Args:        []string{"kubelab", "runtime", ShimCommand, dir},
		Env:         []string{roleEnv + "=" + roleShim},
		Dir:         "/",
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{repW},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if netns == "" { // the host's network
		err = cmd.Start()
	} else {
		err = nsenter.Do(netns, cmd.Start)
	}
	repW.Close()
	if err != nil {
		return rep, 0, fmt.Errorf("start shim: %w", err)
	}
	// Reap the shim when it ends (it outlives StartContainer).
	go func() { _ = cmd.Wait() }()
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(repR).ReadBytes('\n')
		done <- result{line, err}
	}()
	select {
	case res := <-done:
		if len(res.line) == 0 {
			b, _ := os.ReadFile(filepath.Join(dir, "shim.log"))
			return rep, 0, fmt.Errorf("shim ended without a start report: %v: %s", res.err, strings.TrimSpace(string(b)))
		}
		if err := json.Unmarshal(res.line, &rep); err != nil {
			return rep, 0, fmt.Errorf("shim start report %q: %w", res.line, err)
		}
		return rep, cmd.Process.Pid, nil
	case <-time.After(shimStartTimeout):
		_ = cmd.Process.Kill()
		return rep, 0, fmt.Errorf("shim gave no start report within %v", shimStartTimeout)
	}
}

// processAlive reports whether pid is still the process that started at
// start (see processStartTime) and has not exited (a zombie has).
func processAlive(pid int, start uint64) bool {
	if pid <= 0 || start == 0 {
		return false
	}
	st, err := procstat.Read(pid)
	return err == nil && st.StartTime == start && !st.Exited()
}

// refreshLocked moves a RUNNING container to EXITED when its shim recorded
// an exit, or when both its shim and its init are gone without a record.
func (r *Runtime) refreshLocked(c *container) {
	if c.State != stateRunning {
		return
	}
	b, err := os.ReadFile(filepath.Join(r.containerDir(c.ID), "exit.json"))
	if err == nil {
		var rec exitRecord
		if json.Unmarshal(b, &rec) == nil {
			c.State = stateExited
			c.ExitCode = rec.ExitCode
			c.FinishedAt = rec.FinishedAt
			switch {
			case rec.OOMKilled:
				c.Reason = ReasonOOMKilled
			case rec.ExitCode == 0:
				c.Reason = ReasonCompleted
			default:
				c.Reason = ReasonError
			}
			if rec.Signal != "" {
				c.Message = "killed by " + rec.Signal
			}
			_ = r.saveContainerLocked(c)
			return
		}
	}
	if processAlive(c.ShimPid, c.ShimStart) || processAlive(c.Pid, c.PidStart) {
		return
	}
	// The shim may have written exit.json just now.
	if _, err := os.Stat(filepath.Join(r.containerDir(c.ID), "exit.json")); err == nil {
		r.refreshLocked(c)
		return
	}
	c.State = stateExited
	c.ExitCode = 255
	c.FinishedAt = time.Now().UnixNano()
	c.Reason = ReasonUnknown
	c.Message = "the container's shim ended without recording an exit status"
	_ = r.saveContainerLocked(c)
}

// signal sends sig to the container's init, through a pidfd so that a
// recycled PID is never signalled.
func signalProcess(pid int, start uint64, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return err
	}
	defer unix.Close(fd)
	if processStartTime(pid) != start {
		return nil // a different process now has this PID
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// killWait bounds the wait for the exit record after SIGKILL.
const killWait = 10 * time.Second

// waitExited polls until the container is no longer RUNNING, d passes or
// ctx ends.
func (r *Runtime) waitExited(ctx context.Context, c *container, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		r.mu.Lock()
		r.refreshLocked(c)
		done := c.State != stateRunning
		r.mu.Unlock()
		if done {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopSignal parses an image's StopSignal ("SIGQUIT", "QUIT" or "3");
// anything else is SIGTERM.
func stopSignal(name string) unix.Signal {
	name = strings.ToUpper(strings.TrimSpace(name))
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return unix.Signal(n)
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if s := unix.SignalNum(name); s != 0 {
		return s
	}
	return unix.SIGTERM
}

// StopContainer implements CRI: the image's stop signal (SIGTERM by
// default) to the container's main process, then SIGKILL to it and every
// other process in the container's cgroups once timeout seconds have
// passed (with a shared PID namespace, only the container's own processes
// are signalled, never the pod's other containers). It returns when
// the exit is recorded. Stopping a container that is not running, or an
// unknown one, succeeds (CRI: the call is idempotent).
func (r *Runtime) StopContainer(ctx context.Context, containerID string, timeout int64) error {
	r.mu.Lock()
	c, err := r.lookupContainerLocked(containerID)
	if status.Code(err) == codes.NotFound {
		r.mu.Unlock()
		return nil // CRI: idempotent
	}
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.refreshLocked(c)
	if c.State != stateRunning {
		r.mu.Unlock()
		return nil
	}
	pid, start, cgroups := c.Pid, c.PidStart, c.Cgroups
	sig := stopSignal(c.StopSignal)
	r.mu.Unlock()
	if timeout > 0 {
		if err := signalProcess(pid, start, sig); err != nil {
			return errInternal("signal container %q: %v", c.ID, err)
		}
		if r.waitExited(ctx, c, time.Duration(timeout)*time.Second) {
			return nil
		}
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if err := signalProcess(pid, start, unix.SIGKILL); err != nil {
		return errInternal("kill container %q: %v", c.ID, err)
	}
	// Its descendants too: in a shared PID namespace they do not end with
	// the main process (in a namespace of its own they do anyway).
	killCgroup(cgroups)
	if !r.waitExited(ctx, c, killWait) {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return errInternal("container %q did not exit within %v of SIGKILL", c.ID, killWait)
	}
	return nil
}

// ReopenContainerLog implements CRI: the container's shim reopens its log
// file (the kubelet calls it after renaming the file to rotate it). The
// container must be running.
func (r *Runtime) ReopenContainerLog(ctx context.Context, containerID string) error {
	r.mu.Lock()
	c, err := r.lookupContainerLocked(containerID)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.refreshLocked(c)
	running, shimPid, shimStart, logPath := c.State == stateRunning, c.ShimPid, c.ShimStart, c.LogPath
	r.mu.Unlock()
	if !running {
		return status.Errorf(codes.FailedPrecondition, "container %q is not running", containerID)
	}
	if logPath == "" {
		return nil
	}
	if err := signalProcess(shimPid, shimStart, unix.SIGUSR1); err != nil {
		return errInternal("reopen log of container %q: %v", containerID, err)
	}
	// The shim creates the new file; wait for it so that callers can read it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(logPath); err == nil {
			return nil
		}
	}
	return errInternal("container %q: the log file was not reopened", containerID)
}

// RemoveContainer implements CRI: as CRI requires (and containerd does), a
// running container is first killed (StopContainer with no grace period);
// removing an unknown container succeeds. It returns once the container's
// shim has ended, so no process of it remains.
func (r *Runtime) RemoveContainer(ctx context.Context, containerID string) error {
	r.mu.Lock()
	c, err := r.lookupContainerLocked(containerID)
	r.mu.Unlock()
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.StopContainer(ctx, c.ID, 0); err != nil && status.Code(err) != codes.NotFound {
		return err
	}
	r.mu.Lock()
	r.refreshLocked(c)
	if c.State == stateRunning || c.busy {
		r.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "container %q is being started or still runs: retry", c.ID)
	}
	shimPid, shimStart := c.ShimPid, c.ShimStart
	r.mu.Unlock()
	// The shim ends right after it recorded the exit.
	for deadline := time.Now().Add(killWait); processAlive(shimPid, shimStart) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[c.ID]; !ok {
		return nil // removed meanwhile
	}
	if err := removeCgroups(c.Cgroups); err != nil {
		return errInternal("remove container %q: %v", c.ID, err)
	}
	if err := removeStateDir(r.containerDir(c.ID)); err != nil {
		return errInternal("remove container %q: %v", c.ID, err)
	}
	delete(r.containers, c.ID)
	delete(r.names, containerNameKey(c.SandboxID, c.config.GetMetadata()))
	return nil
}

// removeStateDir removes a container's or sandbox's state directory. A
// process of a runtime that crashed mid-create (a shim whose PID was never
// recorded) may still be writing its last files there while it dies, which
// makes one RemoveAll fail with ENOTEMPTY; removing again once it has
// stopped succeeds, so retry for a short while.
func removeStateDir(dir string) error {
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil || !errors.Is(err, syscall.ENOTEMPTY) || time.Now().After(deadline) {
			return err
		}
	}
}

func stateOf(name string) runtimeapi.ContainerState {
	return runtimeapi.ContainerState(runtimeapi.ContainerState_value[name])
}

func (r *Runtime) containerStatusLocked(c *container) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: c.config.GetMetadata(), State: stateOf(c.State),
		CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt,
		ExitCode: c.ExitCode, Image: &runtimeapi.ImageSpec{Image: c.ImageRef}, ImageRef: c.ImageID, ImageId: c.ImageID,
		Reason: c.Reason, Message: c.Message, Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
		Mounts: c.config.GetMounts(), LogPath: c.LogPath,
	}
	if lr := c.config.GetLinux().GetResources(); lr != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: lr}
	}
	return st
}

// ContainerStatus implements CRI.
func (r *Runtime) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookupContainerLocked(containerID)
	if err != nil {
		return nil, err
	}
	r.refreshLocked(c)
	resp := &runtimeapi.ContainerStatusResponse{Status: r.containerStatusLocked(c)}
	if verbose {
		resp.Info = map[string]string{"pid": fmt.Sprint(c.Pid), "shimPid": fmt.Sprint(c.ShimPid), "dir": r.containerDir(c.ID)}
	}
	return resp, nil
}

// ListContainers implements CRI, newest first.
func (r *Runtime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range r.containers {
		r.refreshLocked(c)
		if filter != nil {
			if filter.Id != "" && !strings.HasPrefix(c.ID, filter.Id) {
				continue
			}
			if filter.PodSandboxId != "" && !strings.HasPrefix(c.SandboxID, filter.PodSandboxId) {
				continue
			}
			if filter.State != nil && filter.State.State != stateOf(c.State) {
				continue
			}
			if !labelsMatch(filter.LabelSelector, c.config.GetLabels()) {
				continue
			}
		}
		out = append(out, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.SandboxID, Metadata: c.config.GetMetadata(),
			Image: &runtimeapi.ImageSpec{Image: c.ImageRef}, ImageRef: c.ImageID, ImageId: c.ImageID,
			State: stateOf(c.State), CreatedAt: c.CreatedAt, Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt > out[j].CreatedAt })
	return out, nil
}
