// Package nsenter is the one way kubelab enters Linux namespaces (the process
// runtime, the proxies, the node network); it lives under spec/ because
// plugins of several families and the reference components share it.
// A namespace belongs to an OS thread, not to a goroutine, so
// every function here runs its work on a fresh goroutine that locks its OS
// thread, switches that thread, and either restores it and unlocks it or —
// when the original namespace could not be restored — leaves the thread
// locked so that the Go runtime destroys it when the goroutine returns. A
// thread in a foreign namespace is therefore never handed back to the
// scheduler.
//
// Goroutines started by the function passed to Do do not inherit the
// namespace: they run on other threads. Processes started (forked) by the
// function itself do, because the fork happens on the locked thread.
package nsenter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a locked OS thread that has joined the network namespace
// pinned or found at nsPath (for example /proc/PID/ns/net or a bind mount
// made by Pin). It returns fn's error, or an error from switching.
func Do(nsPath string, fn func() error) error {
	return DoAll([]Namespace{{Path: nsPath, Type: unix.CLONE_NEWNET}}, fn)
}

// Namespace names one namespace to join: the file that refers to it and its
// CLONE_NEW* type.
type Namespace struct {
	// Path is a namespace file such as /proc/42/ns/uts.
	Path string
	// Type is unix.CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC or CLONE_NEWPID.
	// Mount and user namespaces cannot be joined by one thread of a
	// multi-threaded process and are rejected.
	Type int
}

// DoAll is Do for several namespaces, joined in order. Joining a PID
// namespace affects only the processes fn starts, which become members.
func DoAll(nss []Namespace, fn func() error) error {
	for _, ns := range nss {
		if ns.Type == unix.CLONE_NEWNS || ns.Type == unix.CLONE_NEWUSER {
			return fmt.Errorf("namespace %q: mount and user namespaces cannot be joined by a thread", ns.Path)
		}
	}
	targets := make([]int, 0, len(nss))
	defer func() {
		for _, fd := range targets {
			unix.Close(fd)
		}
	}()
	for _, ns := range nss {
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace %q: %w", ns.Path, err)
		}
		targets = append(targets, fd)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's own namespaces, to come back to.
		origs := make([]int, 0, len(nss))
		closeOrigs := func() {
			for _, fd := range origs {
				unix.Close(fd)
			}
		}
		tid := unix.Gettid()
		for _, ns := range nss {
			p := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, nsFile(ns.Type))
			if ns.Type == unix.CLONE_NEWPID {
				// pid_for_children is what setns(CLONE_NEWPID) changes.
				p = fmt.Sprintf("/proc/self/task/%d/ns/pid_for_children", tid)
			}
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				closeOrigs()
				runtime.UnlockOSThread() // nothing switched yet
				errc <- fmt.Errorf("open current namespace %q: %w", p, err)
				return
			}
			origs = append(origs, fd)
		}
		defer closeOrigs()
		switched := 0
		var ferr error
		for i, fd := range targets {
			if err := unix.Setns(fd, nss[i].Type); err != nil {
				ferr = fmt.Errorf("join namespace %q: %w", nss[i].Path, err)
				break
			}
			switched++
		}
		if ferr == nil {
			ferr = fn()
		}
		for i := switched - 1; i >= 0; i-- {
			if err := unix.Setns(origs[i], nss[i].Type); err != nil {
				// Keep the thread locked: it dies with this goroutine.
				errc <- errors.Join(ferr, fmt.Errorf("restore %s namespace (thread discarded): %w", nsFile(nss[i].Type), err))
				return
			}
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func nsFile(t int) string {
	switch t {
	case unix.CLONE_NEWNET:
		return "net"
	case unix.CLONE_NEWUTS:
		return "uts"
	case unix.CLONE_NEWIPC:
		return "ipc"
	case unix.CLONE_NEWPID:
		return "pid"
	case unix.CLONE_NEWNS:
		return "mnt"
	case unix.CLONE_NEWUSER:
		return "user"
	}
	return fmt.Sprintf("ns-type-%#x", t)
}

// Pin creates a new network namespace and bind-mounts it at path (created as
// an empty file; its directory must exist), so that it outlives every
// process in it, like `ip netns add`. The creating thread is switched back
// to its namespace afterwards, or discarded if that fails.
func Pin(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := unix.Gettid()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", tid)
		orig, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // unshare failed: still in orig
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		merr := unix.Mount(self, path, "", unix.MS_BIND, "")
		if merr != nil {
			merr = fmt.Errorf("bind-mount network namespace at %q: %w", path, merr)
		}
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with this goroutine (or, the
			// main thread, is never scheduled again).
			errc <- errors.Join(merr, fmt.Errorf("restore network namespace (thread discarded): %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- merr
	}()
	if err := <-errc; err != nil {
		_ = Unpin(path)
		return err
	}
	return nil
}

// Unpin unmounts a namespace pinned by Pin and removes its file. A path that
// does not exist is not an error.
func Unpin(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount namespace %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove namespace file %q: %w", filepath.Clean(path), err)
	}
	return nil
}

// IsPinned reports whether path is a mounted namespace file (as made by Pin).
func IsPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Enter runs fn on a fresh locked OS thread that has joined every namespace
// of nss — a mount namespace included: the thread first leaves the
// filesystem attributes it shares with the process (unshare(CLONE_FS)), as
// setns(CLONE_NEWNS) requires. Since that cannot be undone, the thread is
// never handed back: it ends with the goroutine (Enter never uses the main
// thread, which the Go runtime would keep, wedged, instead). fn may also
// change other per-thread state, such as the capability bounding set,
// before it starts processes, which inherit all of it.
func Enter(nss []Namespace, fn func() error) error {
	for _, ns := range nss {
		if ns.Type == unix.CLONE_NEWUSER {
			return fmt.Errorf("namespace %q: user namespaces cannot be joined by a thread", ns.Path)
		}
	}
	fds := make([]int, 0, len(nss))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, ns := range nss {
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace %q: %w", ns.Path, err)
		}
		fds = append(fds, fd)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			errc <- enterLocked(nss, fds, fn) // never unlocks
			return
		}
		// This is the main thread, which must not be discarded. While this
		// goroutine holds it locked, no other goroutine can run on it: do
		// the work on a new goroutine, which therefore gets another thread.
		inner := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			inner <- enterLocked(nss, fds, fn) // never unlocks
		}()
		err := <-inner
		runtime.UnlockOSThread() // unchanged
		errc <- err
	}()
	return <-errc
}

// enterLocked is Enter's work on the current, locked, non-main thread.
func enterLocked(nss []Namespace, fds []int, fn func() error) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem attributes: %w", err)
	}
	for i, fd := range fds {
		if err := unix.Setns(fd, nss[i].Type); err != nil {
			return fmt.Errorf("join namespace %q: %w", nss[i].Path, err)
		}
	}
	return fn()
}
