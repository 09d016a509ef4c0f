package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubelab/kubelab/spec/nsenter"
	"github.com/kubelab/kubelab/spec/procstat"
)

// The runtime binary re-executes itself in two roles, chosen by roleEnv:
//
//   - the shim (one per container, its own session, outliving the runtime
//     process) starts the init, copies the container's stdout and stderr to
//     the CRI log file, waits for the init and writes exit.json;
//   - the init (PID 1 of the container's new PID namespace, in new mount,
//     UTS and IPC namespaces, in the sandbox's network namespace) joins the
//     cgroups, mounts the root filesystem, /proc, /dev and /sys, pivots into
//     the root and execs the workload.
//
// Both read the container's spec.json; the last argument is the container's
// state directory.
const roleEnv = "KUBELAB_PROCESS_ROLE"

const (
	roleShim = "shim"
	roleInit = "init"
)

// RunInitIfRequested runs the shim or the container init when this process
// was re-executed as one, and then exits; otherwise it returns at once. A
// binary that embeds the process runtime — its main, and TestMain of tests
// that start containers — must call it first.
func RunInitIfRequested() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	dir := os.Args[len(os.Args)-1]
	// fd 3 was inherited without close-on-exec; nothing this process execs
	// may keep it open (the init relies on exec closing it).
	unix.CloseOnExec(3)
	switch role {
	case roleShim:
		os.Exit(runShim(dir))
	case rolePidHolder:
		os.Exit(runPidHolder())
	case roleInit:
		err := runInit(dir)
		// Only reached on failure: tell the shim why, on fd 3.
		f := os.NewFile(3, "start-error")
		fmt.Fprint(f, err.Error())
		os.Exit(127)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown role\n", roleEnv, role)
		os.Exit(2)
	}
}

// mountSpec is a bind mount from the host into the container.
type mountSpec struct {
	HostPath      string `json:"hostPath"`
	ContainerPath string `json:"containerPath"`
	Readonly      bool   `json:"readonly,omitempty"`
}

// shimSpec is everything the shim and the init need, written by the runtime
// as spec.json in the container directory before the shim starts.
type shimSpec struct {
	ID string `json:"id"`
	// Rootfs is the image's unpacked, read-only root filesystem: the
	// overlay's lower directory.
	Rootfs         string            `json:"rootfs"`
	Args           []string          `json:"args"`
	Env            []string          `json:"env"`
	Cwd            string            `json:"cwd"`
	Hostname       string            `json:"hostname"`
	Cgroups        map[string]string `json:"cgroups"`
	LogPath        string            `json:"logPath,omitempty"`
	Mounts         []mountSpec       `json:"mounts,omitempty"`
	ReadonlyRootfs bool              `json:"readonlyRootfs,omitempty"`
	User           processUser       `json:"user"`
	// Sysctls are the IPC-namespaced sysctls of the sandbox, set by the
	// init in the container's new IPC namespace.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Privileged containers keep every capability and an unmasked /proc;
	// the others keep only Caps in their bounding set.
	Privileged bool  `json:"privileged,omitempty"`
	Caps       []int `json:"caps,omitempty"`
	// HostUTS, HostPID and HostIPC keep the host's namespace of that kind.
	HostUTS bool `json:"hostUTS,omitempty"`
	HostPID bool `json:"hostPID,omitempty"`
	HostIPC bool `json:"hostIPC,omitempty"`
	// JoinPID is the process whose PID namespace the container enters
	// (PID modes POD and TARGET) instead of having one of its own.
	JoinPID *pidRef `json:"joinPID,omitempty"`
	// Stdin keeps the container's stdin open in the shim for attached
	// clients (ContainerConfig.Stdin); StdinOnce closes it when the first
	// attached client's stdin ends. Without Stdin it is /dev/null.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
}

// startReport is the one JSON line the shim writes on its fd 3 to the
// runtime once the workload was exec'ed (Pid set) or could not be (Error).
type startReport struct {
	Pid       int    `json:"pid,omitempty"`
	PidStart  uint64 `json:"pidStart,omitempty"`
	StartedAt int64  `json:"startedAt,omitempty"`
	Error     string `json:"error,omitempty"`
}

// exitRecord is exit.json, written atomically by the shim after the
// container's init exited and its output was drained.
type exitRecord struct {
	ExitCode   int32  `json:"exitCode"`
	FinishedAt int64  `json:"finishedAt"`
	OOMKilled  bool   `json:"oomKilled,omitempty"`
	Signal     string `json:"signal,omitempty"`
}

func readShimSpec(dir string) (*shimSpec, error) {
	b, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, err
	}
	var s shimSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("spec.json: %w", err)
	}
	return &s, nil
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// runShim is the shim's main. It returns the shim's exit code.
func runShim(dir string) int {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	report := os.NewFile(3, "start-report")
	fail := func(err error) int {
		b, _ := json.Marshal(startReport{Error: err.Error()})
		report.Write(append(b, '\n'))
		report.Close()
		return 1
	}
	spec, err := readShimSpec(dir)
	if err != nil {
		return fail(err)
	}
	hub := &attachHub{conns: map[net.Conn]byte{}, stdinOnce: spec.StdinOnce}
	lw := &criLogWriter{w: io.Discard, hub: hub}
	al, err := listenAttach(dir)
	if err != nil {
		return fail(err)
	}
	defer al.Close()
	var inR *os.File
	if spec.Stdin {
		if inR, hub.stdin, err = os.Pipe(); err != nil {
			return fail(err)
		}
	}
	if spec.LogPath != "" {
		if err := lw.reopen(spec.LogPath); err != nil {
			return fail(err)
		}
		// SIGUSR1 (from ReopenContainerLog) reopens the log file.
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			for range usr1 {
				if err := lw.reopen(spec.LogPath); err != nil {
					fmt.Fprintf(os.Stderr, "reopen log: %v\n", err)
				}
			}
		}()
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	startR, startW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	cmd := initCommand(dir, spec, inR, outW, errW, startW)
	if err := startInit(cmd, spec.JoinPID); err != nil {
		return fail(err)
	}
	outW.Close()
	errW.Close()
	startW.Close()
	if inR != nil {
		inR.Close()
	}
	go hub.serve(al)
	// The init closes fd 3 by exec'ing the workload (close-on-exec), or
	// writes why it could not.
	msg, _ := io.ReadAll(startR)
	startR.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); lw.copy("stdout", outR) }()
	go func() { defer wg.Done(); lw.copy("stderr", errR) }()
	if len(msg) > 0 {
		_ = cmd.Wait()
		wg.Wait()
		return fail(errors.New(string(msg)))
	}
	b, _ := json.Marshal(startReport{Pid: cmd.Process.Pid, PidStart: processStartTime(cmd.Process.Pid), StartedAt: time.Now().UnixNano()})
	report.Write(append(b, '\n'))
	report.Close()

	waitErr := cmd.Wait()
	if spec.HostPID || spec.JoinPID != nil {
		// Not a PID namespace's PID 1: the container's other processes
		// outlive the main one unless killed (and would hold its output).
		killCgroup(spec.Cgroups)
	}
	wg.Wait()
	hub.close()
	hub.closeStdin()
	rec := exitRecordOf(waitErr)
	if st, err := readCgroupStats(spec.Cgroups); err == nil && st.OOMKills > 0 {
		rec.OOMKilled = true
	}
	b, _ = json.Marshal(rec)
	if err := writeFileAtomic(filepath.Join(dir, "exit.json"), b); err != nil {
		fmt.Fprintf(os.Stderr, "write exit.json: %v\n", err)
		return 1
	}
	return 0
}

// initCommand is the container's init: this binary again in its init role,
// in new mount (and, unless shared, PID, UTS and IPC) namespaces, with the
// container's stdio and the start-report pipe as fd 3.
func initCommand(dir string, spec *shimSpec, stdin, stdout, stderr, startW *os.File) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe")
	// The same arguments as the shim's own (see startShim).
	cmd.Args = []string{"kubelab", "runtime", ShimCommand, dir}
	cmd.Env = []string{roleEnv + "=" + roleInit}
	cmd.Stdin = nil
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{startW}
	flags := uintptr(syscall.CLONE_NEWNS)
	if !spec.HostPID && spec.JoinPID == nil {
		flags |= syscall.CLONE_NEWPID
	}
	if !spec.HostUTS {
		flags |= syscall.CLONE_NEWUTS
	}
	if !spec.HostIPC {
		flags |= syscall.CLONE_NEWIPC
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	return cmd
}

// startInit starts cmd, inside the PID namespace of join when it is set
// (forked from a thread whose children join that namespace). It fails when
// the process holding that namespace is gone, before or during the start.
func startInit(cmd *exec.Cmd, join *pidRef) error {
	if join == nil {
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start container init: %w", err)
		}
		return nil
	}
	if processStartTime(join.Pid) != join.Start {
		return fmt.Errorf("the process holding the PID namespace to join (%d) is gone", join.Pid)
	}
	err := nsenter.DoAll([]nsenter.Namespace{{Path: fmt.Sprintf("/proc/%d/ns/pid", join.Pid), Type: unix.CLONE_NEWPID}}, cmd.Start)
	if err != nil {
		return fmt.Errorf("start container init: %w", err)
	}
	if processStartTime(join.Pid) != join.Start {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("the process holding the PID namespace to join (%d) ended", join.Pid)
	}
	return nil
}

// exitRecordOf is the exit record of a process that ended with waitErr:
// 128+signal for a signalled process (with the signal's name), the exit
// status otherwise, 255 when the wait itself failed.
func exitRecordOf(waitErr error) exitRecord {
	rec := exitRecord{FinishedAt: time.Now().UnixNano()}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			rec.ExitCode = 128 + int32(ws.Signal())
			rec.Signal = unix.SignalName(ws.Signal())
		} else {
			rec.ExitCode = int32(ws.ExitStatus())
		}
	default:
		rec.ExitCode = 255
	}
	return rec
}

// processStartTime returns field 22 of /proc/PID/stat (start time in clock
// ticks since boot), which tells a process from a later one with the same
// PID; 0 if the process is gone.
func processStartTime(pid int) uint64 { return procstat.StartTime(pid) }

// maxLogLine is the longest log line written as one entry; longer lines
// are split into partial ("P") entries, like containerd does.
const maxLogLine = 16 * 1024

// criLogWriter writes lines in the CRI log format:
// "<RFC3339Nano time> <stream> <F|P> <content>\n". mu serialises whole
// entries from the stdout and stderr copiers.
type criLogWriter struct {
	mu sync.Mutex // guards w and f
	w  io.Writer
	// f is w when w is the log file (nil when output is discarded).
	f *os.File
	// hub gets the output too, for attached clients (see attach.go).
	hub *attachHub
}

// openLog opens path for appending, creating its directory.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return f, nil
}

// reopen switches to a new file at path (after the kubelet rotated the log).
func (l *criLogWriter) reopen(path string) error {
	f, err := openLog(path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.w = f, f
	return nil
}

func (l *criLogWriter) entry(stream string, partial bool, content []byte) {
	tag := "F"
	if partial {
		tag = "P"
	}
	line := make([]byte, 0, len(content)+64)
	line = time.Now().UTC().AppendFormat(line, time.RFC3339Nano)
	line = append(line, ' ')
	line = append(line, stream...)
	line = append(line, ' ')
	line = append(line, tag...)
	line = append(line, ' ')
	line = append(line, content...)
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(line)
}

// copy reads r to EOF, writing one entry per line (a line longer than
// maxLogLine as partial entries); a last line without a newline is written
// as a full line at EOF. Attached clients get each read at once, whole
// lines or not.
func (l *criLogWriter) copy(stream string, r io.ReadCloser) {
	defer r.Close()
	sb := attachStdout
	if stream == "stderr" {
		sb = attachStderr
	}
	buf := make([]byte, maxLogLine)
	pending := make([]byte, 0, 2*maxLogLine)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			l.hub.write(sb, buf[:n])
			pending = append(pending, buf[:n]...)
			rest := pending
			for {
				if i := bytes.IndexByte(rest, '\n'); i >= 0 && i < maxLogLine {
					l.entry(stream, false, rest[:i])
					rest = rest[i+1:]
				} else if len(rest) >= maxLogLine {
					l.entry(stream, true, rest[:maxLogLine])
					rest = rest[maxLogLine:]
				} else {
					break
				}
			}
			pending = append(pending[:0], rest...)
		}
		if err != nil {
			if len(pending) > 0 {
				l.entry(stream, false, pending)
			}
			return
		}
	}
}

// runInit is the container init's main. It returns only on failure.
func runInit(dir string) error {
	// One thread does the per-thread parts and the final exec.
	runtime.LockOSThread()
	spec, err := readShimSpec(dir)
	if err != nil {
		return err
	}
	// The cgroups are joined just before the exec, so that the init's own
	// memory is not charged to the container (it could not even start under
	// a small limit); their files are opened now, while the host's
	// /sys/fs/cgroup is still in reach.
	var procs []*os.File
	for _, p := range spec.Cgroups {
		f, err := os.OpenFile(filepath.Join(p, "cgroup.procs"), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open cgroup %q: %w", p, err)
		}
		procs = append(procs, f) // close-on-exec
	}
	for k, v := range spec.Sysctls {
		if spec.HostIPC {
			return fmt.Errorf("sysctl %s would change the host: the sandbox uses the host's IPC namespace", k)
		}
		if err := os.WriteFile(sysctlPath(k), []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	// Nothing mounted here propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := filepath.Join(dir, "rootfs")
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{root, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", spec.Rootfs, upper, work)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay root filesystem over %q: %w", spec.Rootfs, err)
	}
	if err := mountSystem(root); err != nil {
		return err
	}
	if !spec.Privileged {
		if err := maskProc(root); err != nil {
			return err
		}
	}
	for _, m := range spec.Mounts {
		if err := bindMount(root, m); err != nil {
			return err
		}
	}
	if !spec.HostUTS {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if err := pivotRoot(root); err != nil {
		return err
	}
	if spec.ReadonlyRootfs {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount root read-only: %w", err)
		}
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("working directory %q: %w", cwd, err)
	}
	if err := os.Chdir(cwd); err != nil {
		return fmt.Errorf("working directory %q: %w", cwd, err)
	}
	if len(spec.Args) == 0 {
		return errors.New("no command: neither the container nor the image names one")
	}
	path, err := lookPath(spec.Args[0], spec.Env)
	if err != nil {
		return err
	}
	if !spec.Privileged {
		if err := dropBoundingCaps(spec.Caps); err != nil {
			return err
		}
	}
	for _, f := range procs {
		// "0" is the writer itself.
		if _, err := f.Write([]byte("0")); err != nil {
			return fmt.Errorf("join cgroup %s: %w", f.Name(), err)
		}
	}
	// syscall's (unlike x/sys/unix's) apply to every thread of the process.
	groups := make([]int, len(spec.User.Groups))
	for i, g := range spec.User.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(spec.User.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", spec.User.GID, err)
	}
	if err := syscall.Setuid(int(spec.User.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", spec.User.UID, err)
	}
	if err := unix.Exec(path, spec.Args, spec.Env); err != nil {
		return fmt.Errorf("exec %q: %w", spec.Args[0], err)
	}
	return nil
}

// defaultPath is PATH when the container's environment has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds name like a shell would, with the PATH of env. It runs in
// the container's mount namespace (the init after pivot_root, the exec
// thread after joining it).
func lookPath(name string, env []string) (string, error) {
	isExec := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%q is not an executable file", p)
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := isExec(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if isExec(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

// mountSystem mounts /proc, a minimal /dev and a read-only /sys in root.
func mountSystem(root string) error {
	type m struct {
		src, target, fstype string
		flags               uintptr
		data                string
	}
	const common = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, x := range []m{
		{"proc", "proc", "proc", common, ""},
		{"tmpfs", "dev", "tmpfs", unix.MS_NOSUID | unix.MS_STRICTATIME, "mode=755,size=65536k"},
		{"devpts", "dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
		{"shm", "dev/shm", "tmpfs", common, "mode=1777,size=65536k"},
		{"mqueue", "dev/mqueue", "mqueue", common, ""},
		{"sysfs", "sys", "sysfs", common | unix.MS_RDONLY, ""},
	} {
		t := filepath.Join(root, x.target)
		if err := os.MkdirAll(t, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(x.src, t, x.fstype, x.flags, x.data); err != nil {
			return fmt.Errorf("mount %s on /%s: %w", x.fstype, x.target, err)
		}
	}
	for _, dev := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		t := filepath.Join(root, "dev", dev)
		f, err := os.OpenFile(t, os.O_CREATE|os.O_RDONLY, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount("/dev/"+dev, t, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", dev, err)
		}
	}
	for link, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	} {
		if err := os.Symlink(target, filepath.Join(root, "dev", link)); err != nil {
			return err
		}
	}
	return nil
}

// bindMount mounts m.HostPath at m.ContainerPath inside root.
func bindMount(root string, m mountSpec) error {
	fi, err := os.Stat(m.HostPath)
	if err != nil {
		return fmt.Errorf("mount source %q: %w", m.HostPath, err)
	}
	t := filepath.Join(root, filepath.Clean("/"+m.ContainerPath))
	if fi.IsDir() {
		err = os.MkdirAll(t, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(t), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(t, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("mount target %q: %w", m.ContainerPath, err)
	}
	if err := unix.Mount(m.HostPath, t, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %q on %q: %w", m.HostPath, m.ContainerPath, err)
	}
	if m.Readonly {
		if err := unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %q read-only: %w", m.ContainerPath, err)
		}
	}
	return nil
}

// pivotRoot makes root the process's root and detaches the old one.
func pivotRoot(root string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	if err := os.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one;
	// unmounting it from inside (fchdir to the old root first) leaves only
	// the new root — no temporary directory needed.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return os.Chdir("/")
}
