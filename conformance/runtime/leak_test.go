package runtime_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/plugins/runtime/process"
)

// leakSnapshot is what of a run's could remain on the host.
type leakSnapshot struct {
	mounts, netns, cgroups, processes []string
}

// takeSnapshot lists the host state that belongs to a run of the suite
// whose temporary files are under tmp and whose runtime instance is
// instance: mounts under tmp (the sandboxes' network namespace pins and
// anything else the runtime mounts in the host's mount table), named
// network namespaces in /run/netns and /var/run/netns that name tmp's or
// the instance's, the instance's cgroup directories, and processes that
// run this test binary (container shims), mention tmp on their command
// line, or sit in the instance's cgroups.
func takeSnapshot(t *testing.T, tmp, instance string) leakSnapshot {
	t.Helper()
	var s leakSnapshot
	cgName := "kubelab-" + instance
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			if strings.HasPrefix(fields[4], tmp) || strings.Contains(fields[4], cgName) {
				s.mounts = append(s.mounts, fields[4]+" ("+fields[3]+")")
			}
		}
		f.Close()
	}
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), instance) || strings.Contains(e.Name(), filepath.Base(tmp)) {
				s.netns = append(s.netns, filepath.Join(dir, e.Name()))
			}
		}
	}
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == cgName {
			s.cgroups = append(s.cgroups, path)
			return filepath.SkipDir
		}
		return nil
	})
	self, _ := os.Executable()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid := filepath.Base(p)
		if pid == fmt.Sprint(os.Getpid()) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join(p, "cgroup"))
		exe, _ := os.Readlink(filepath.Join(p, "exe"))
		if exe == self || strings.Contains(string(cmdline), tmp) || strings.Contains(string(cg), cgName) {
			s.processes = append(s.processes, pid+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return s
}

// added returns the entries of after that are not in before.
func added(before, after []string) []string {
	var out []string
	for _, a := range after {
		if !slices.Contains(before, a) {
			out = append(out, a)
		}
	}
	return out
}

// TestNoLeaks runs the whole suite against the process runtime in a child
// process, in a network namespace of its own, and checks that nothing of
// the run remains afterwards: no mount, named network namespace, cgroup or
// process of its, and no link in the child's network namespace but
// loopback (the runtime's bridge and veths live there).
func TestNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole suite")
	}
	tmp := t.TempDir()
	instance := fmt.Sprintf("klleak%d", os.Getpid())
	before := takeSnapshot(t, tmp, instance)

	var childNS netns.NsHandle = -1
	defer func() {
		if childNS >= 0 {
			childNS.Close()
		}
	}()
	o := harness.RunChild(t, harness.Child{
		Env:         []string{targetEnv + "=" + process.Name, "TMPDIR=" + tmp, instanceEnv + "=" + instance},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL},
		Started: func(pid int) {
			h, err := netns.GetFromPid(pid)
			if err != nil {
				t.Errorf("opening the child's network namespace: %v", err)
				return
			}
			childNS = h
		},
	})
	if len(o.Failed) > 0 {
		t.Errorf("the suite failed against the process runtime: %v", o.Failed)
	}
	if len(o.Passed) == 0 {
		t.Fatalf("no spec passed")
	}

	checkNothingAdded(t, before, takeSnapshot(t, tmp, instance))
	if childNS >= 0 {
		h, err := netlink.NewHandleAt(childNS)
		if err != nil {
			t.Fatalf("netlink in the child's network namespace: %v", err)
		}
		defer h.Close()
		links, err := h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				left = append(left, l.Type()+" "+l.Attrs().Name)
			}
		}
		if len(left) > 0 {
			t.Errorf("the run left links behind: %v", left)
		}
	}
}

// checkNothingAdded fails t for everything in after that is not in before.
func checkNothingAdded(t *testing.T, before, after leakSnapshot) {
	t.Helper()
	for _, c := range []struct {
		what          string
		before, after []string
	}{
		{"mounts", before.mounts, after.mounts},
		{"named network namespaces", before.netns, after.netns},
		{"cgroups", before.cgroups, after.cgroups},
		{"processes", before.processes, after.processes},
	} {
		if n := added(c.before, c.after); len(n) > 0 {
			t.Errorf("the run left %s behind:\n  %s", c.what, strings.Join(n, "\n  "))
		}
	}
}

// TestNoLeaksAfterCrash kills a run of the suite while it has sandboxes and
// containers, which leaves them behind (mounts, cgroups, processes), and
// checks that the next run of the suite against the same plugin cleans
// them up (SweepStale) and leaves nothing of either run.
func TestNoLeaksAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite twice")
	}
	tmp := t.TempDir()
	instance := fmt.Sprintf("klcrash%d", os.Getpid())
	env := []string{"TMPDIR=" + tmp, instanceEnv + "=" + instance}
	before := takeSnapshot(t, tmp, instance)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	crash := exec.Command(exe, "-test.run=^TestSuite$", "-test.count=1")
	crash.Env = append(append(os.Environ(), targetEnv+"="+process.Name), env...)
	crash.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := crash.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		sbs, _ := filepath.Glob(filepath.Join(tmp, runtime.RootPattern, "state", "sandboxes", "*"))
		cs, _ := filepath.Glob(filepath.Join(tmp, runtime.RootPattern, "state", "containers", "*"))
		if len(sbs) > 0 && len(cs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = crash.Process.Kill()
			_ = crash.Wait()
			t.Fatal("the run to crash made no sandbox and container in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = crash.Process.Kill()
	_ = crash.Wait()
	crashed := takeSnapshot(t, tmp, instance)
	if len(added(before.mounts, crashed.mounts)) == 0 || len(added(before.cgroups, crashed.cgroups)) == 0 {
		t.Fatalf("the crashed run left no mount or cgroup behind, so this test proves nothing: %+v", crashed)
	}

	o := harness.RunChild(t, harness.Child{
		Env:         append([]string{targetEnv + "=" + process.Name}, env...),
		Flags:       []string{"-ginkgo.label-filter=runtime:version"},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL},
	})
	if len(o.Failed) > 0 || len(o.Passed) == 0 {
		t.Fatalf("the run after the crash: passed %v, failed %v", o.Passed, o.Failed)
	}
	checkNothingAdded(t, before, takeSnapshot(t, tmp, instance))
	if left, _ := filepath.Glob(filepath.Join(tmp, runtime.RootPattern)); len(left) > 0 {
		t.Errorf("the crashed run's root directory is still there: %v", left)
		for _, d := range left {
			b, _ := os.ReadFile(filepath.Join(d, "owner.json"))
			entries, _ := os.ReadDir(d)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Logf("%s: owner %s; entries %v", d, b, names)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(o.Output, "\n") {
			if strings.Contains(l, "runtime suite:") {
				t.Log(l)
			}
		}
	}
}
