// Package containerd runs a real containerd (Debian's containerd 1.6 with
// runc) as a separate process for tests, conformance targets and benchmarks:
// the runtime suite's "containerd" target drives it through
// plugins/runtime/cri, which proves that the suite tests CRI's semantics and
// not kubelab's process runtime.
//
// A Daemon is one containerd with everything of its own: root and state
// directories, gRPC socket, runc root, a generated config.toml with the CRI
// plugin enabled (sandbox image kubelab.local/pause:1.0, cgroupfs, overlayfs
// snapshots when the kernel allows them), and a CNI configuration with a
// bridge of its own on a free 10.88.N.0/24 subnet (no masquerade, so the CNI
// plugins write no iptables rules). Stop removes every sandbox through CRI,
// stops containerd, kills any shim left and deletes what it created: mounts,
// network namespaces, the bridge, the CNI state and the directory.
//
// Images come from local OCI archives (kubelab.local has no registry):
// Start imports Options.Images with `ctr images import`, or builds and
// imports kubelab's test images when none are given.
package containerd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/ociimage"
)

// Namespace is the containerd namespace the CRI plugin uses; images are
// imported into it.
const Namespace = "k8s.io"

// CNIBinDir is where Debian's containernetworking-plugins installs the CNI
// plugins (bridge, host-local, loopback).
const CNIBinDir = "/usr/lib/cni"

// ErrUnavailable is wrapped by Start's error when containerd cannot run
// here: a binary is missing (containerd, ctr, runc, the CNI plugins) or the
// process is not root. It wraps spec.ErrUnsupported, so a runner skips the
// target rather than failing it.
var ErrUnavailable = fmt.Errorf("containerd unavailable (needs root and the Debian packages containerd, runc and containernetworking-plugins; `make deps` installs them): %w", spec.ErrUnsupported)

// Options configure Start. The zero value builds kubelab's test images and
// keeps everything in a new temporary directory.
type Options struct {
	// Dir is the root of all the daemon's state (created when missing, and
	// removed by Stop). Empty means a new directory in os.TempDir(). Its
	// path must be short enough for a unix socket (about 80 bytes).
	Dir string
	// Images are OCI image archives to import into the CRI namespace. The
	// pause image (ociimage.PauseImageName) must be among them for
	// RunPodSandbox to work. Nil means kubelab's four test images, built
	// with BuildTestImages (which needs the go command and this module's
	// source).
	Images []string
	// Log, when set, receives containerd's output. Start keeps the last few
	// KiB of it either way, to explain a failure.
	Log io.Writer
	// StartTimeout bounds how long Start waits for the CRI to report itself
	// ready; 0 means one minute. The ctx passed to Start bounds it too.
	StartTimeout time.Duration
}

// Daemon is a running containerd. Its methods are safe for concurrent use.
type Daemon struct {
	dir, sock   string
	bridge      string
	subnet      netip.Prefix
	snapshotter string
	cmd         *exec.Cmd
	output      *harness.TailBuffer
	ownsDir     bool

	exited  chan struct{} // closed once containerd has been reaped
	waitErr error         // its exit status, set before exited closes

	stopOnce sync.Once
	stopErr  error
}

// Start runs containerd, imports the images and returns once the CRI
// reports both RuntimeReady and NetworkReady. On error nothing it started is
// left behind. Missing binaries or a non-root caller are an error wrapping
// ErrUnavailable.
func Start(ctx context.Context, o Options) (_ *Daemon, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()

	d := &Daemon{output: harness.NewTailBuffer(16 << 10), exited: make(chan struct{})}
	if o.Dir == "" {
		if d.dir, err = os.MkdirTemp("", "kl-ctrd-"); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
		d.ownsDir = true
	} else {
		if d.dir, err = filepath.Abs(o.Dir); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
		if err := os.MkdirAll(d.dir, 0o700); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
		d.ownsDir = true
	}
	defer func() {
		if err != nil {
			d.cleanup()
		}
	}()
	d.sock = filepath.Join(d.dir, "containerd.sock")
	// The ttrpc socket is the gRPC one plus ".ttrpc"; sun_path holds 108
	// bytes with its NUL.
	if len(d.sock)+len(".ttrpc") > 107 {
		return nil, fmt.Errorf("containerd: directory %s is too long for a unix socket path; use a shorter Options.Dir: %w", d.dir, spec.ErrInvalid)
	}
	sum := sha256.Sum256([]byte(d.dir))
	d.bridge = "klc" + hex.EncodeToString(sum[:])[:8]
	if d.subnet, err = d.makeBridge(); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	d.snapshotter = "native"
	if overlayWorks(d.dir) {
		d.snapshotter = "overlayfs"
	}
	if err := d.writeConfig(); err != nil {
		return nil, fmt.Errorf("containerd: writing its configuration: %w", err)
	}

	var out io.Writer = d.output
	if o.Log != nil {
		out = io.MultiWriter(d.output, o.Log)
	}
	d.cmd = exec.Command("containerd", "--config", filepath.Join(d.dir, "config.toml"), "--log-level", "warn")
	d.cmd.Dir = d.dir
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so that Stop can kill what it forks.
		Setpgid: true,
		// If this process dies without calling Stop, so does containerd.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerd: starting it: %w", err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("containerd: %w; its output:\n%s", err, d.output.String())
	}

	images := o.Images
	if images == nil {
		if images, err = BuildTestImages(ctx, filepath.Join(d.dir, "images")); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	for _, img := range images {
		if err := d.Import(ctx, img); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Available returns nil when Start can run containerd here, or an error
// wrapping ErrUnavailable that says what is missing.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("containerd: not root: %w", ErrUnavailable)
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("containerd: %v: %w", err, ErrUnavailable)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			return fmt.Errorf("containerd: CNI plugin: %v: %w", err, ErrUnavailable)
		}
	}
	return nil
}

// BuildTestImages builds the static workload binary (`go build` of
// ./tools/workload, so it must run inside this module's source tree, as
// tests do) and writes kubelab's test images as OCI archives into outDir:
// pause, workload, webserver and busybox (from Debian's busybox-static). It
// returns the archives' paths.
func BuildTestImages(ctx context.Context, outDir string) ([]string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	wl := filepath.Join(outDir, "workload")
	if err := ociimage.BuildWorkload(ctx, wl); err != nil {
		return nil, fmt.Errorf("building the workload binary for the test images: %w", err)
	}
	built, err := ociimage.BuildTestImages(outDir, wl, "")
	if err != nil {
		return nil, fmt.Errorf("building the test images: %w", err)
	}
	var paths []string
	for _, b := range built {
		paths = append(paths, b.Path)
	}
	return paths, nil
}

// Endpoint returns the CRI endpoint, "unix://" and the socket's path.
func (d *Daemon) Endpoint() string { return "unix://" + d.sock }

// Socket returns the path of containerd's gRPC socket (for ctr -a).
func (d *Daemon) Socket() string { return d.sock }

// PauseImage returns the sandbox image containerd is configured with.
func (d *Daemon) PauseImage() string { return ociimage.PauseImageName }

// Dir returns the daemon's directory, which Stop removes.
func (d *Daemon) Dir() string { return d.dir }

// PodSubnet returns the subnet pods get their addresses from.
func (d *Daemon) PodSubnet() netip.Prefix { return d.subnet }

// Bridge returns the name of the CNI bridge pods are attached to.
func (d *Daemon) Bridge() string { return d.bridge }

// Snapshotter returns the snapshotter in use: "overlayfs", or "native"
// where overlay mounts do not work.
func (d *Daemon) Snapshotter() string { return d.snapshotter }

// Pid returns containerd's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Import imports the OCI image archive at path into the CRI namespace with
// `ctr images import` and unpacks it for the daemon's snapshotter.
func (d *Daemon) Import(ctx context.Context, path string) error {
	out, err := d.ctr(ctx, "images", "import", "--all-platforms", "--snapshotter", d.snapshotter, path)
	if err != nil {
		return fmt.Errorf("containerd: ctr images import %s: %v\n%s", path, err, out)
	}
	return nil
}

// ctr runs ctr against the daemon in the CRI namespace.
func (d *Daemon) ctr(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, "ctr", append([]string{"--address", d.sock, "--namespace", Namespace}, args...)...).CombinedOutput()
}

// Stop removes every pod sandbox through CRI, stops containerd and cleans
// up whatever is left: shims, mounts, network namespaces, the CNI bridge,
// cgroups of the containers and the directory. It is idempotent; every
// call returns the first one's result. An error names what could not be
// removed.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() {
		d.stopErr = d.cleanup()
	})
	return d.stopErr
}

// cleanup undoes Start, whatever state it reached.
func (d *Daemon) cleanup() error {
	var errs []error
	var leftovers state
	if d.cmd != nil && d.cmd.Process != nil {
		leftovers = d.removeSandboxes()
		d.terminate()
	}
	// Containers containerd could not remove (it had died, or failed):
	// runc still knows them, with their network namespaces.
	if d.dir != "" {
		runcIDs, runcNetns := d.forceDeleteRunc()
		leftovers.ids = append(leftovers.ids, runcIDs...)
		leftovers.netns = append(leftovers.netns, runcNetns...)
	}
	// Shims outlive containerd (they are their own process groups): kill
	// those that serve this daemon.
	for _, pid := range d.ShimPids() {
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, id := range leftovers.ids {
		// The shim's socket lives in /run/containerd/s whatever the
		// daemon's state dir is; its name hashes address, namespace, id.
		sum := sha256.Sum256([]byte(filepath.Join(d.sock, Namespace, id)))
		os.Remove(filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:])))
	}
	for _, ns := range leftovers.netns {
		if _, err := os.Stat(ns); err == nil {
			unix.Unmount(ns, unix.MNT_DETACH)
			if err := os.Remove(ns); err != nil {
				errs = append(errs, fmt.Errorf("network namespace %s: %w", ns, err))
			}
		}
	}
	if err := unmountUnder(d.dir); err != nil {
		errs = append(errs, err)
	}
	if d.bridge != "" {
		if l, err := netlink.LinkByName(d.bridge); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("bridge %s: %w", d.bridge, err))
			}
		}
	}
	// libcni caches each attachment's result in /var/lib/cni/results
	// (<network>-<sandbox>-<interface>); CNI DEL removes them, a killed
	// daemon does not.
	if d.bridge != "" {
		cached, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", d.networkName()+"-*"))
		for _, f := range cached {
			os.Remove(f)
		}
		os.Remove(filepath.Join(cniCacheDir, "results")) // only when empty
		os.Remove(cniCacheDir)
	}
	for _, id := range leftovers.ids {
		if err := removeCgroups(id); err != nil {
			errs = append(errs, err)
		}
	}
	if d.ownsDir && d.dir != "" {
		if err := os.RemoveAll(d.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("containerd: stop: %w", err)
	}
	return nil
}

// state is what removeSandboxes learnt, for the sweep after containerd is
// gone: the IDs of sandboxes and containers, and the sandboxes' network
// namespaces.
type state struct {
	ids   []string
	netns []string
}

// removeSandboxes removes every container and sandbox through CRI, which
// also tears their networks down with CNI (the veths, the IPAM leases).
func (d *Daemon) removeSandboxes() state {
	var st state
	select {
	case <-d.exited:
		return st
	default:
	}
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return st
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cs, err := rc.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err == nil {
		for _, c := range cs.Containers {
			st.ids = append(st.ids, c.Id)
			rc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 0})
			rc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id})
		}
	}
	if sbs, err := rc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
		for _, sb := range sbs.Items {
			st.ids = append(st.ids, sb.Id)
			if s, err := rc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id, Verbose: true}); err == nil {
				var info struct {
					RuntimeSpec struct {
						Linux struct {
							Namespaces []struct{ Type, Path string }
						}
					}
				}
				if json.Unmarshal([]byte(s.Info["info"]), &info) == nil {
					for _, ns := range info.RuntimeSpec.Linux.Namespaces {
						if ns.Type == "network" && ns.Path != "" {
							st.netns = append(st.netns, ns.Path)
						}
					}
				}
			}
			rc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id})
			rc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id})
		}
	}
	return st
}

// forceDeleteRunc kills and deletes, with `runc delete --force`, every
// container left in the daemon's runc root (one directory per containerd
// namespace), which also removes their cgroups. It returns their IDs and
// the network namespaces their runc state names.
func (d *Daemon) forceDeleteRunc() (ids, netns []string) {
	roots, _ := filepath.Glob(filepath.Join(d.dir, "runc", "*"))
	for _, root := range roots {
		states, _ := filepath.Glob(filepath.Join(root, "*", "state.json"))
		for _, st := range states {
			id := filepath.Base(filepath.Dir(st))
			ids = append(ids, id)
			var state struct {
				Config struct{ Namespaces []struct{ Type, Path string } }
			}
			if b, err := os.ReadFile(st); err == nil && json.Unmarshal(b, &state) == nil {
				for _, ns := range state.Config.Namespaces {
					if ns.Type == "NEWNET" && ns.Path != "" && !strings.HasPrefix(ns.Path, "/proc/") {
						netns = append(netns, ns.Path)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			exec.CommandContext(ctx, "runc", "--root", root, "delete", "--force", id).Run()
			cancel()
		}
	}
	return ids, netns
}

// terminate stops containerd: SIGTERM, then SIGKILL to its process group
// after ten seconds.
func (d *Daemon) terminate() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.cmd.Process.Kill()
	<-d.exited
}

// ShimPids returns the pids of the containerd-shim processes serving this
// daemon (their -address is its socket). Each runs one sandbox's
// containers; the pause process and the containers are its children.
func (d *Daemon) ShimPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte("containerd-shim")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if i := slices.Index(args, "-address"); i >= 0 && i+1 < len(args) && args[i+1] == d.sock {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroups removes the cgroup directories named id that runc left in
// any cgroup v1 hierarchy or the v2 tree (depth-first, after killing what
// is in them).
func removeCgroups(id string) error {
	var dirs []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, e os.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if e.Name() == id {
			dirs = append(dirs, p)
			return filepath.SkipDir
		}
		return nil
	})
	var errs []error
	for _, dir := range dirs {
		var sub []string
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		for i := len(sub) - 1; i >= 0; i-- {
			if b, err := os.ReadFile(filepath.Join(sub[i], "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			var err error
			for range 50 {
				if err = os.Remove(sub[i]); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", sub[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// waitReady polls the CRI Status until the runtime and the network are
// ready, containerd exits, or ctx ends.
func (d *Daemon) waitReady(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		st, err := rc.Status(ctx, &runtimeapi.StatusRequest{})
		if err == nil {
			ready := 0
			last = ""
			for _, c := range st.GetStatus().GetConditions() {
				if c.Status {
					ready++
				} else {
					last += fmt.Sprintf(" %s=false (%s: %s)", c.Type, c.Reason, c.Message)
				}
			}
			if ready >= 2 && last == "" {
				return nil
			}
		} else if status.Code(err) == codes.Unimplemented {
			// The gRPC server starts once every plugin has loaded: the CRI
			// plugin failed to load, and its output says why.
			return fmt.Errorf("no CRI service: %w", err)
		} else {
			last = err.Error()
		}
		select {
		case <-d.exited:
			return fmt.Errorf("exited while starting: %v", d.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("CRI not ready in time (%s): %w", strings.TrimSpace(last), ctx.Err())
		case <-tick.C:
		}
	}
}

// cniCacheDir is libcni's cache directory, which containerd 1.6 does not
// let a configuration move.
const cniCacheDir = "/var/lib/cni"

// networkName is the name of the daemon's CNI network.
func (d *Daemon) networkName() string { return "kubelab-" + d.bridge }

// writeConfig writes config.toml and the CNI configuration.
func (d *Daemon) writeConfig() error {
	cniConf := filepath.Join(d.dir, "cni", "net.d")
	if err := os.MkdirAll(cniConf, 0o755); err != nil {
		return err
	}
	gw := d.subnet.Addr().Next()
	conflist := map[string]any{
		"cniVersion": "1.0.0",
		"name":       d.networkName(),
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      d.bridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": d.subnet.String(), "gateway": gw.String()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": filepath.Join(d.dir, "cni", "ipam"),
			},
		}},
	}
	b, err := json.MarshalIndent(conflist, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cniConf, "10-kubelab.conflist"), b, 0o644); err != nil {
		return err
	}
	q := strconv.Quote
	cfg := `version = 2
root = ` + q(filepath.Join(d.dir, "root")) + `
state = ` + q(filepath.Join(d.dir, "state")) + `
# Plugins this fixture never uses, or that cannot work here.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ` + q(d.sock) + `

# The legacy runtime, unused but needed by the tasks service in 1.6.
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = ` + q(filepath.Join(d.dir, "runc-v1")) + `

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ` + q(ociimage.PauseImageName) + `
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Never lower an OOM score below containerd's own: this may run where
  # that needs a privilege root lacks (a container), and runc would fail.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = ` + q(d.snapshotter) + `
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ` + q(filepath.Join(d.dir, "runc")) + `
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ` + q(CNIBinDir) + `
    conf_dir = ` + q(cniConf) + `
    max_conf_num = 1
`
	return os.WriteFile(filepath.Join(d.dir, "config.toml"), []byte(cfg), 0o600)
}

// subnetLock serializes makeBridge between processes, so that daemons
// started at the same time pick different subnets.
const subnetLock = "/run/lock/kubelab-containerd-subnet.lock"

// makeBridge creates the CNI bridge up front with the gateway address of a
// free subnet, which it returns: the address claims the subnet at once
// (the CNI bridge plugin adopts an existing bridge).
func (d *Daemon) makeBridge() (netip.Prefix, error) {
	os.MkdirAll(filepath.Dir(subnetLock), 0o755)
	lock, err := os.OpenFile(subnetLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return netip.Prefix{}, err
	}
	subnet, err := freeSubnet()
	if err != nil {
		return netip.Prefix{}, err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: d.bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return netip.Prefix{}, fmt.Errorf("creating bridge %s: %w", d.bridge, err)
	}
	gw := subnet.Addr().Next()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if err := netlink.AddrAdd(br, addr); err != nil {
		return netip.Prefix{}, fmt.Errorf("bridge %s: address %s: %w", d.bridge, gw, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return netip.Prefix{}, fmt.Errorf("bridge %s: %w", d.bridge, err)
	}
	return subnet, nil
}

// freeSubnet returns the first 10.88.N.0/24 that no address or route on
// this host overlaps.
func freeSubnet() (netip.Prefix, error) {
	var used []netip.Prefix
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := toPrefix(a.IPNet.IP, a.IPNet.Mask); ok {
			used = append(used, p)
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			if p, ok := toPrefix(r.Dst.IP, r.Dst.Mask); ok && p.Bits() > 0 {
				used = append(used, p)
			}
		}
	}
	for n := 0; n < 256; n++ {
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 88, byte(n), 0}), 24)
		if !slices.ContainsFunc(used, cand.Overlaps) {
			return cand, nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.88.N.0/24 subnet for the pod network")
}

func toPrefix(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones := 0
	for _, m := range mask {
		for i := 7; i >= 0; i-- {
			if m&(1<<i) != 0 {
				ones++
			}
		}
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// overlayWorks reports whether an overlay mount with two lower directories
// works under dir (not on every filesystem, nor in every container), which
// containerd's overlayfs snapshotter needs.
func overlayWorks(dir string) bool {
	probe, err := os.MkdirTemp(dir, ".overlay-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(probe)
	for _, s := range []string{"l1", "l2", "upper", "work", "merged"} {
		if os.Mkdir(filepath.Join(probe, s), 0o755) != nil {
			return false
		}
	}
	opts := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s", filepath.Join(probe, "l2"), filepath.Join(probe, "l1"), filepath.Join(probe, "upper"), filepath.Join(probe, "work"))
	merged := filepath.Join(probe, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return false
	}
	unix.Unmount(merged, unix.MNT_DETACH)
	return true
}
