package imagestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock(2) on path, creating it when missing,
// and returns the function that releases it. flock locks belong to the open
// file, so two goroutines of one process exclude each other too.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// tryLockFile is lockFile that gives up (ok false) when the lock is held.
func tryLockFile(path string) (unlock func(), ok bool) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

// tmpDir is a staging directory under root/tmp, held by a flock on its
// companion "<dir>.lock" file for as long as it is in use, so that Open in
// another process never removes it.
type tmpDir struct {
	path string
	lock *os.File
}

// newTmpDir creates a staging directory under the store's tmp/.
func (s *Store) newTmpDir(prefix string) (*tmpDir, error) {
	for {
		lf, err := os.CreateTemp(filepath.Join(s.root, "tmp"), prefix+"*.lock")
		if err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
		if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			lf.Close()
			continue
		}
		// A concurrent cleanTmp may have removed the lock file between its
		// creation and our flock: then start again with a fresh one.
		fi1, err1 := lf.Stat()
		fi2, err2 := os.Stat(lf.Name())
		if err1 != nil || err2 != nil || !os.SameFile(fi1, fi2) {
			lf.Close()
			continue
		}
		dir := strings.TrimSuffix(lf.Name(), ".lock")
		if err := os.Mkdir(dir, 0o700); err != nil {
			lf.Close()
			os.Remove(lf.Name())
			return nil, fmt.Errorf("image store: %w", err)
		}
		return &tmpDir{path: dir, lock: lf}, nil
	}
}

// Close removes the staging directory (what was renamed out of it stays).
func (t *tmpDir) Close() {
	_ = os.RemoveAll(t.path)
	_ = os.Remove(t.lock.Name())
	t.lock.Close()
}

// cleanTmp removes staging directories no live process holds.
func (s *Store) cleanTmp() {
	tmp := filepath.Join(s.root, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	held := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".lock") {
			continue
		}
		lp := filepath.Join(tmp, name)
		unlock, ok := tryLockFile(lp)
		if !ok {
			held[strings.TrimSuffix(name, ".lock")] = true
			continue
		}
		_ = os.RemoveAll(strings.TrimSuffix(lp, ".lock"))
		_ = os.Remove(lp)
		unlock()
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".lock") || held[name] {
			continue
		}
		// A directory whose lock file is gone: orphaned. (newTmpDir creates
		// the lock file first, so a live one always has it.)
		if _, err := os.Stat(filepath.Join(tmp, name+".lock")); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(filepath.Join(tmp, name))
		}
	}
}
