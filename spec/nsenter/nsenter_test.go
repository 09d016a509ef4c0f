package nsenter

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func nsIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestPinDoUnpin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runtime.LockOSThread()
	host := nsIno(t, "/proc/thread-self/ns/net")
	runtime.UnlockOSThread()
	path := filepath.Join(t.TempDir(), "ns")
	if err := Pin(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unpin(path) })
	if !IsPinned(path) {
		t.Fatalf("%s is not a namespace file", path)
	}
	pinned := nsIno(t, path)
	if pinned == host {
		t.Fatalf("the pinned namespace is the host's")
	}
	var inside uint64
	if err := Do(path, func() error {
		inside = nsIno(t, "/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != pinned {
		t.Errorf("Do ran in namespace %d, want %d", inside, pinned)
	}
	if got := nsIno(t, "/proc/self/ns/net"); got != host {
		t.Errorf("the main thread is in namespace %d, want %d", got, host)
	}
	// Threads handed back must be in the host namespace: check many.
	for i := 0; i < 50; i++ {
		runtime.LockOSThread()
		got := nsIno(t, "/proc/thread-self/ns/net")
		runtime.UnlockOSThread()
		if got != host {
			t.Fatalf("a thread was left in namespace %d", got)
		}
		runtime.Gosched()
	}
	if err := Unpin(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("namespace file after Unpin: %v", err)
	}
	if err := Unpin(path); err != nil {
		t.Errorf("second Unpin: %v", err)
	}
}

func TestDoAllRejectsMountAndUserNamespaces(t *testing.T) {
	for _, typ := range []int{unix.CLONE_NEWNS, unix.CLONE_NEWUSER} {
		err := DoAll([]Namespace{{Path: "/proc/self/ns/mnt", Type: typ}}, func() error { return nil })
		if err == nil {
			t.Errorf("type %#x accepted", typ)
		}
	}
}

func TestDoReportsAMissingNamespace(t *testing.T) {
	called := false
	err := Do(filepath.Join(t.TempDir(), "absent"), func() error { called = true; return nil })
	if err == nil || called {
		t.Errorf("Do on a missing namespace: err %v, fn called %v", err, called)
	}
}

func TestEnterJoinsAMountNamespaceAndDiscardsTheThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// A process of our own in a new mount namespace.
	cmd := exec.Command("/bin/sleep", "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	nsPath := fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid)
	target := nsIno(t, nsPath)
	var inside uint64
	if err := Enter([]Namespace{{Path: nsPath, Type: unix.CLONE_NEWNS}}, func() error {
		inside = nsIno(t, "/proc/thread-self/ns/mnt")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != target {
		t.Errorf("Enter ran in mount namespace %d, want %d", inside, target)
	}
	runtime.LockOSThread()
	self := nsIno(t, "/proc/thread-self/ns/mnt")
	runtime.UnlockOSThread()
	if main := nsIno(t, "/proc/self/ns/mnt"); main != self {
		t.Errorf("the main thread changed mount namespace (%d, want %d)", main, self)
	}
}
