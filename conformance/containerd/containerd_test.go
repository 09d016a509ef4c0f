package containerd_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/ociimage"
)

func TestUnavailableWrapsErrUnsupported(t *testing.T) {
	if !errors.Is(containerd.ErrUnavailable, spec.ErrUnsupported) {
		t.Fatal("ErrUnavailable does not wrap spec.ErrUnsupported")
	}
	if err := containerd.Available(); err != nil && !errors.Is(err, containerd.ErrUnavailable) {
		t.Fatalf("Available() = %v, not wrapping ErrUnavailable", err)
	}
}

func TestTooLongDirIsInvalid(t *testing.T) {
	if err := containerd.Available(); err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(os.TempDir(), strings.Repeat("d", 100))
	_, err := containerd.Start(context.Background(), containerd.Options{Dir: dir, Images: []string{}})
	if !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("Start with a %d-byte dir: %v, want ErrInvalid", len(dir), err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Start left %s behind: %v", dir, err)
	}
}

// TestRunsAPodAndCleansUp starts containerd with the test images, runs a
// pod whose workload container prints its arguments through CRI, checks
// the pod's address and the container's log, and checks that Stop leaves
// no bridge, network namespace, shim, mount or directory behind.
func TestRunsAPodAndCleansUp(t *testing.T) {
	if err := containerd.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := containerd.Start(ctx, containerd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			d.Stop()
		}
	})
	if !strings.HasPrefix(d.Endpoint(), "unix:///") || !strings.HasSuffix(d.Endpoint(), "/containerd.sock") {
		t.Errorf("Endpoint() = %q", d.Endpoint())
	}
	if d.PauseImage() != ociimage.PauseImageName {
		t.Errorf("PauseImage() = %q", d.PauseImage())
	}
	t.Logf("snapshotter %s, bridge %s, subnet %s", d.Snapshotter(), d.Bridge(), d.PodSubnet())

	conn, err := grpc.NewClient(d.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	ic := runtimeapi.NewImageServiceClient(conn)

	imgs, err := ic.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, img := range imgs.Images {
		tags = append(tags, img.RepoTags...)
	}
	for _, want := range []string{ociimage.PauseImageName, ociimage.WorkloadImageName, ociimage.WebserverImageName, ociimage.BusyboxImageName} {
		if !strings.Contains(strings.Join(tags, " "), want) {
			t.Errorf("image %s not listed by CRI (have %v)", want, tags)
		}
	}

	logDir := filepath.Join(d.Dir(), "pod-logs")
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "fixture", Namespace: "default", Uid: "fixture-uid"},
		Hostname:     "fixture-host",
		LogDirectory: logDir,
	}
	sb, err := rc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(st.GetStatus().GetNetwork().GetIp())
	if err != nil || !d.PodSubnet().Contains(ip) {
		t.Errorf("pod IP %q (%v) not in %s", st.GetStatus().GetNetwork().GetIp(), err, d.PodSubnet())
	}
	c, err := rc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
		Image:    &runtimeapi.ImageSpec{Image: ociimage.WorkloadImageName},
		Args:     []string{"print", "hello-containerd"},
		LogPath:  "main.log",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	for {
		cs, err := rc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.ContainerId})
		if err != nil {
			t.Fatal(err)
		}
		if cs.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			if cs.Status.ExitCode != 0 {
				t.Errorf("exit code %d", cs.Status.ExitCode)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the container never exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(logDir, "main.log"))
	if err != nil || !strings.Contains(string(b), "arg[0]=hello-containerd") || !strings.Contains(string(b), "hostname=fixture-host") {
		t.Errorf("container log: %q, %v", b, err)
	}
	// A second, running pod that Stop must remove by itself.
	sb2, err := rc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "left", Namespace: "default", Uid: "left-uid"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var netnsPaths []string
	for _, id := range []string{sb.PodSandboxId, sb2.PodSandboxId} {
		p := netnsPath(ctx, t, rc, id)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("sandbox %s: network namespace %q: %v", id, p, err)
		}
		netnsPaths = append(netnsPaths, p)
	}
	conn.Close()

	shimsBefore := shims(t, d.Socket())
	if len(shimsBefore) == 0 {
		t.Errorf("no containerd-shim serving %s while pods run", d.Socket())
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	checkNoLeaks(t, d, netnsPaths, sb.PodSandboxId, sb2.PodSandboxId, c.ContainerId)
}

// checkNoLeaks checks that a stopped daemon left nothing behind: its
// bridge, the network namespaces, shims, its directory, mounts, CNI cache
// entries, cgroups named after the ids.
func checkNoLeaks(t *testing.T, d *containerd.Daemon, netnsPaths []string, ids ...string) {
	t.Helper()
	if _, err := netlink.LinkByName(d.Bridge()); err == nil {
		t.Errorf("bridge %s left behind", d.Bridge())
	}
	for _, p := range netnsPaths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("network namespace %s left behind: %v", p, err)
		}
	}
	if cached, _ := filepath.Glob("/var/lib/cni/results/kubelab-" + d.Bridge() + "-*"); len(cached) > 0 {
		t.Errorf("CNI results left in libcni's cache: %v", cached)
	}
	if s := shims(t, d.Socket()); len(s) > 0 {
		t.Errorf("shims left running: %v", s)
	}
	if _, err := os.Stat(d.Dir()); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind: %v", d.Dir(), err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), d.Dir()) {
		t.Errorf("mounts under %s left behind", d.Dir())
	}
	// No masquerade, no port mapping: the CNI plugins wrote no firewall
	// rules, and none may mention the bridge or the pod subnet.
	subnet := strings.TrimSuffix(d.PodSubnet().Addr().String(), ".0") + "."
	for _, dump := range [][]string{{"iptables-save"}, {"nft", "list", "ruleset"}} {
		out, err := exec.Command(dump[0], dump[1:]...).Output()
		if err != nil {
			continue // the tool is not installed
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, d.Bridge()) || strings.Contains(line, subnet) {
				t.Errorf("%s: a rule left behind: %s", dump[0], line)
			}
		}
	}
	for _, id := range ids {
		if out, _ := exec.Command("find", "/sys/fs/cgroup", "-name", id).Output(); len(out) > 0 {
			t.Errorf("cgroups left behind: %s", out)
		}
	}
}

// TestStopAfterContainerdWasKilled: when containerd died, Stop still
// removes the running pod's processes, network namespace, cgroups and
// mounts (through runc's state).
func TestStopAfterContainerdWasKilled(t *testing.T) {
	if err := containerd.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := containerd.Start(ctx, containerd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			d.Stop()
		}
	})
	conn, err := grpc.NewClient(d.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "crash", Namespace: "default", Uid: "crash-uid"}}
	sb, err := rc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleeper"},
		Image:    &runtimeapi.ImageSpec{Image: ociimage.WorkloadImageName},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	cs, err := rc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.ContainerId, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Pid int }
	if err := json.Unmarshal([]byte(cs.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container pid from %q: %v", cs.Info["info"], err)
	}
	netns := []string{netnsPath(ctx, t, rc, sb.PodSandboxId)}
	conn.Close()

	if err := syscall.Kill(d.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	checkNoLeaks(t, d, netns, sb.PodSandboxId, c.ContainerId)
	if err := syscall.Kill(info.Pid, 0); err == nil {
		t.Errorf("the container's process %d still runs", info.Pid)
	}
}

// netnsPath returns the network namespace file of a sandbox, from its
// verbose status (containerd's runtime spec).
func netnsPath(ctx context.Context, t *testing.T, rc runtimeapi.RuntimeServiceClient, id string) string {
	t.Helper()
	st, err := rc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct{ Namespaces []struct{ Type, Path string } }
		}
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatalf("verbose sandbox info: %v", err)
	}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			return ns.Path
		}
	}
	t.Fatalf("sandbox %s has no network namespace in %s", id, st.Info["info"])
	return ""
}

// shims lists the command lines of the containerd shims serving sock.
func shims(t *testing.T, sock string) []string {
	t.Helper()
	out, _ := exec.Command("pgrep", "-a", "-f", "containerd-shim.*-address "+sock).Output()
	return strings.Fields(strings.TrimSpace(string(out)))
}
