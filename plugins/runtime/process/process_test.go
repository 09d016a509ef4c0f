package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/kubelab/kubelab/spec/nsenter"
)

func TestSandboxLifecycle(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	id, _ := runSandbox(t, r, "lifecycle")
	st, err := r.PodSandboxStatus(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.Network.GetIp() == "" {
		t.Fatalf("status = %v, want READY with an IP", st.Status)
	}
	nsPath := filepath.Join(r.RootDir(), "netns", id)
	if !nsenter.IsPinned(nsPath) {
		t.Fatalf("network namespace %s is not pinned", nsPath)
	}
	var loUp, ethIP bool
	if err := nsenter.Do(nsPath, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		loUp = lo.Attrs().Flags&1 != 0
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(eth, netlink.FAMILY_V4)
		for _, a := range addrs {
			ethIP = ethIP || a.IP.String() == st.Status.Network.Ip
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !loUp || !ethIP {
		t.Errorf("in the sandbox: lo up %v, eth0 has %s: %v", loUp, st.Status.Network.Ip, ethIP)
	}
	br, err := netlink.LinkByName(bridgeName(r.Instance()))
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if _, err := netlink.LinkByName(vethName(id)); err != nil {
		t.Errorf("host veth: %v", err)
	}
	if addrs, _ := netlink.AddrList(br, netlink.FAMILY_V4); len(addrs) != 1 {
		t.Errorf("bridge addresses = %v, want the gateway", addrs)
	}
	cg := r.sandboxes[id].Cgroups
	for _, p := range cg {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("sandbox cgroup: %v", err)
		}
	}

	if err := r.StopPodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.StopPodSandbox(ctx, id); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	st, _ = r.PodSandboxStatus(ctx, id, false)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after stop: %v", st.Status.State)
	}
	if _, err := netlink.LinkByName(vethName(id)); err == nil {
		t.Errorf("veth still there after stop")
	}
	if err := r.RemovePodSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(nsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file after remove: %v", err)
	}
	for _, p := range cg {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("sandbox cgroup after remove: %v", err)
		}
	}
	if _, err := netlink.LinkByName(bridgeName(r.Instance())); err == nil {
		t.Errorf("bridge still there after the last sandbox")
	}
	if sbs, _ := r.ListPodSandbox(ctx, nil); len(sbs) != 0 {
		t.Errorf("sandboxes after remove: %v", sbs)
	}
}

var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) (.*)$`)

// logEntries parses a CRI log, failing on a malformed line.
func logEntries(t *testing.T, log string) (stdout, stderr []string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if l == "" {
			continue
		}
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log line not in CRI format: %q", l)
		}
		if m[3] == "stdout" {
			stdout = append(stdout, m[5])
		} else {
			stderr = append(stderr, m[5])
		}
	}
	return stdout, stderr
}

func TestContainerEnvArgsWorkdir(t *testing.T) {
	r := newTestRuntime(t)
	sb, sbCfg := runSandbox(t, r, "envargs")
	cfg := containerConfig("envargs", "sh", "-c")
	cfg.Args = []string{`echo "foo=$FOO image=$FROM_IMAGE"; pwd; hostname; echo "pid=$$"; echo oops >&2; exit 0`}
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "FOO", Value: []byte("bar baz")}}
	cfg.WorkingDir = "/work/dir"
	id := startContainer(t, r, sb, sbCfg, cfg)
	st := waitExit(t, r, id)
	if st.ExitCode != 0 || st.Reason != ReasonCompleted || st.StartedAt == 0 || st.FinishedAt < st.StartedAt {
		t.Errorf("status = %v", st)
	}
	out, errs := logEntries(t, readLog(t, sbCfg, cfg))
	want := []string{"foo=bar baz image=yes", "/work/dir", "envargs-host", "pid=1"}
	if strings.Join(out, "|") != strings.Join(want, "|") {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if len(errs) != 1 || errs[0] != "oops" {
		t.Errorf("stderr = %q", errs)
	}
}

func TestArgsReplaceImageCmd(t *testing.T) {
	cases := []struct {
		name                           string
		entrypoint, cmd, command, args []string
		want                           string
	}{
		{"image only", []string{"/ep"}, []string{"c"}, nil, nil, "/ep c"},
		{"args replace cmd", []string{"/ep"}, []string{"c"}, nil, []string{"a"}, "/ep a"},
		{"command drops cmd", []string{"/ep"}, []string{"c"}, []string{"/x"}, nil, "/x"},
		{"command and args", []string{"/ep"}, []string{"c"}, []string{"/x"}, []string{"a"}, "/x a"},
		{"cmd only", nil, []string{"sh"}, nil, nil, "sh"},
	}
	for _, c := range cases {
		if got := strings.Join(containerArgs(c.entrypoint, c.cmd, c.command, c.args), " "); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	r := newTestRuntime(t)
	sb, sbCfg := runSandbox(t, r, "exits")
	for _, c := range []struct {
		script string
		code   int32
		reason string
	}{{"exit 0", 0, ReasonCompleted}, {"exit 3", 3, ReasonError}} {
		cfg := containerConfig("exit"+strings.ReplaceAll(c.script, " ", ""), "sh", "-c", c.script)
		st := waitExit(t, r, startContainer(t, r, sb, sbCfg, cfg))
		if st.ExitCode != c.code || st.Reason != c.reason {
			t.Errorf("%q: exit %d reason %q, want %d %q", c.script, st.ExitCode, st.Reason, c.code, c.reason)
		}
	}
}

func TestExecSyncAndStats(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "exec")
	cfg := containerConfig("sleeper", "sh", "-c", "echo ready > /tmp/marker; exec sleep 1000")
	cfg.WorkingDir = "/tmp"
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hello")}}
	id := startContainer(t, r, sb, sbCfg, cfg)

	var out []byte
	var err error
	for i := 0; i < 100; i++ { // the marker is written right after start
		if out, _, err = r.ExecSync(ctx, id, []string{"cat", "marker"}, 5*time.Second); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || string(out) != "ready\n" {
		t.Fatalf("exec cat: %q, %v", out, err)
	}
	out, stderr, err := r.ExecSync(ctx, id, []string{"sh", "-c", `echo "$GREETING $(hostname) $(pwd)"; ls /proc | grep -c '^[0-9]'; echo bad >&2; exit 4`}, 5*time.Second)
	var ce utilexec.CodeExitError
	if !errors.As(err, &ce) || ce.Code != 4 {
		t.Fatalf("exec exit: %v, want code 4", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 || lines[0] != "hello exec-host /tmp" {
		t.Errorf("exec stdout = %q", out)
	} else if lines[1] == "1" || lines[1] == "0" {
		// sleep (PID 1), sh, ls/grep: the exec joined the container's PID namespace.
		t.Errorf("processes seen by exec: %s", lines[1])
	}
	if string(stderr) != "bad\n" {
		t.Errorf("exec stderr = %q", stderr)
	}
	// The exec'ed process is as confined as the container: its mount
	// namespace (it sees the container's root) and its capabilities.
	out, _, err = r.ExecSync(ctx, id, []string{"sh", "-c", "grep CapBnd /proc/self/status; readlink /proc/self/ns/mnt; readlink /proc/1/ns/mnt"}, 5*time.Second)
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); err != nil || len(lines) != 3 || lines[0] != "CapBnd:\t00000000a80425fb" || lines[1] != lines[2] {
		t.Errorf("exec confinement: %q, %v", out, err)
	}
	_, _, err = r.ExecSync(ctx, id, []string{"sleep", "10"}, 200*time.Millisecond)
	wantCode(t, "exec timeout", err, codes.DeadlineExceeded)
	_, _, err = r.ExecSync(ctx, id, []string{"no-such-command"}, time.Second)
	if err == nil {
		t.Errorf("exec of a missing command succeeded")
	}

	stats, err := r.ContainerStats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if stats.GetMemory().GetUsageBytes().GetValue() == 0 || stats.GetCpu() == nil {
		t.Errorf("stats = %v", stats)
	}
	list, err := r.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{PodSandboxId: sb})
	if err != nil || len(list) != 1 {
		t.Errorf("ListContainerStats = %v, %v", list, err)
	}
	psb, err := r.PodSandboxStats(ctx, sb)
	if err != nil || psb.GetLinux().GetMemory().GetUsageBytes().GetValue() < stats.GetMemory().GetUsageBytes().GetValue()/2 || len(psb.GetLinux().GetContainers()) != 1 {
		t.Errorf("PodSandboxStats = %v, %v", psb, err)
	}
	if err := r.UpdateContainerResources(ctx, id, &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.ContainerStatus(ctx, id, false); st.GetStatus().GetResources().GetLinux().GetMemoryLimitInBytes() != 64<<20 {
		t.Errorf("resources after the update: %v", st.GetStatus().GetResources())
	}
	if err := r.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	_, _, err = r.ExecSync(ctx, id, []string{"true"}, time.Second)
	wantCode(t, "exec in exited container", err, codes.FailedPrecondition)
}

func TestUserAndSandboxFiles(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	cfg := sandboxConfig("files")
	cfg.LogDirectory = t.TempDir()
	cfg.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}
	sb, err := r.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	c := containerConfig("whoami", "sh", "-c", `echo "$(id -u):$(id -g):$(id -G)"; cat /etc/resolv.conf /etc/hostname; grep files-host /etc/hosts`)
	c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 2000}, SupplementalGroups: []int64{3000},
	}}
	id := startContainer(t, r, sb, cfg, c)
	if st := waitExit(t, r, id); st.ExitCode != 0 {
		t.Errorf("exit %d: %s", st.ExitCode, readLog(t, cfg, c))
	}
	out, _ := logEntries(t, readLog(t, cfg, c))
	want := []string{"1000:2000:2000 3000", "nameserver 10.96.0.10", "search default.svc.cluster.local", "options ndots:5", "files-host"}
	if len(out) != 6 || strings.Join(out[:5], "|") != strings.Join(want, "|") || !strings.HasSuffix(out[5], "files-host") {
		t.Errorf("output = %q, want %q and the hosts line", out, want)
	}
	c2 := containerConfig("baduser", "true")
	c2.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody-here"}}
	_, err = r.CreateContainer(ctx, sb, c2, cfg)
	wantCode(t, "unknown user name", err, codes.InvalidArgument)
}

func TestSysctls(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	cfg := sandboxConfig("sysctl")
	cfg.LogDirectory = t.TempDir()
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmax": "1048576",
	}}
	sb, err := r.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	c := containerConfig("read", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/kernel/shmmax")
	waitExit(t, r, startContainer(t, r, sb, cfg, c))
	if out, _ := logEntries(t, readLog(t, cfg, c)); strings.Join(out, " ") != "80 1048576" {
		t.Errorf("sysctls seen in the container: %q", out)
	}
	bad := sandboxConfig("badsysctl")
	bad.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.panic": "1"}}
	_, err = r.RunPodSandbox(ctx, bad, "")
	wantCode(t, "a host-wide sysctl", err, codes.InvalidArgument)
}

func TestReopenContainerLog(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	sb, sbCfg := runSandbox(t, r, "rotate")
	c := containerConfig("ticker", "sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.02; done")
	id := startContainer(t, r, sb, sbCfg, c)
	waitLog(t, sbCfg, c, "line 1\n")
	path := filepath.Join(sbCfg.LogDirectory, c.LogPath)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := r.ReopenContainerLog(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitLog(t, sbCfg, c, "line")
	logEntries(t, readLog(t, sbCfg, c)) // well-formed after the switch
	if err := r.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "reopen of an exited container", r.ReopenContainerLog(ctx, id), codes.FailedPrecondition)
}

func TestCapabilitiesAndMaskedProc(t *testing.T) {
	r := newTestRuntime(t)
	sb, sbCfg := runSandbox(t, r, "caps")
	script := `grep CapBnd /proc/self/status; if (: >> /proc/sys/kernel/printk_ratelimit) 2>/dev/null; then echo sys-writable; else echo sys-readonly; fi`
	cases := []struct {
		name string
		sc   *runtimeapi.LinuxContainerSecurityContext
		want string
	}{
		{"default", nil, "CapBnd:\t00000000a80425fb sys-readonly"},
		{"drop all add one", &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{
			DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"CAP_NET_ADMIN"}}}, "CapBnd:\t0000000000001000 sys-readonly"},
		{"privileged", &runtimeapi.LinuxContainerSecurityContext{Privileged: true}, "sys-writable"},
	}
	for _, c := range cases {
		cfg := containerConfig(strings.ReplaceAll(c.name, " ", "-"), "sh", "-c", script)
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: c.sc}
		waitExit(t, r, startContainer(t, r, sb, sbCfg, cfg))
		out, _ := logEntries(t, readLog(t, sbCfg, cfg))
		if got := strings.Join(out, " "); !strings.HasSuffix(got, c.want) || (c.name != "privileged" && got != c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestHostNamespaces(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	cfg := sandboxConfig("hostns")
	cfg.Hostname = ""
	cfg.LogDirectory = t.TempDir()
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE},
	}}
	sb, err := r.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := r.PodSandboxStatus(ctx, sb, false)
	if o := st.GetStatus().GetLinux().GetNamespaces().GetOptions(); o.GetNetwork() != runtimeapi.NamespaceMode_NODE || o.GetPid() != runtimeapi.NamespaceMode_NODE {
		t.Errorf("namespace options in the status: %v", o)
	}
	c := containerConfig("probe", "sh", "-c", "for n in net pid ipc; do readlink /proc/self/ns/$n; done; hostname")
	waitExit(t, r, startContainer(t, r, sb, cfg, c))
	out, _ := logEntries(t, readLog(t, cfg, c))
	hostPID, _ := os.Readlink("/proc/self/ns/pid")
	host, _ := os.Hostname()
	if len(out) != 4 || out[0] != hostNamespaces["net"] || out[1] != hostPID || out[2] == hostNamespaces["ipc"] || out[3] != host {
		t.Errorf("container saw %q; want the host's net and pid namespaces (%s, %s), its own IPC, hostname %q", out, hostNamespaces["net"], hostPID, host)
	}
	if err := r.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
}
