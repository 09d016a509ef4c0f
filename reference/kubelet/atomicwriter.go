package kubelet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dataLink is the symlink that points at the current version of an
// atomically written volume, as upstream's AtomicWriter names it.
const dataLink = "..data"

// WriteAtomic makes dir hold exactly files (relative paths, possibly in
// subdirectories), so that a reader never sees a mix of old and new
// content, as upstream's AtomicWriter: the files are written into a fresh
// hidden directory "..<timestamp>", the "..data" symlink is swapped to it
// with one rename, each top-level name is a symlink through "..data", and
// the previous version and names no longer present are removed. Nothing
// changes when the content is the same. It reports whether it wrote.
func WriteAtomic(dir string, files map[string]VolumeFile) (bool, error) {
	for p := range files {
		clean := filepath.Clean(p)
		if p == "" || filepath.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(filepath.Base(clean), "..") {
			return false, fmt.Errorf("volume file path %q: %w", p, ErrConfig)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if old != "" && sameContent(filepath.Join(dir, old), files) {
		return false, nil
	}
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	for p, f := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(full, f.Data, f.Mode.Perm()); err != nil {
			return false, err
		}
		if err := os.Chmod(full, f.Mode.Perm()); err != nil { // not filtered by the umask
			return false, err
		}
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return false, err
	}
	tmpLink := filepath.Join(dir, dataLink+"_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataLink)); err != nil {
		return false, err
	}
	top := map[string]bool{}
	for p := range files {
		top[strings.SplitN(filepath.ToSlash(filepath.Clean(p)), "/", 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, name) {
			continue
		}
		_ = os.RemoveAll(link)
		if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
			return false, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == dataLink || n == filepath.Base(ts):
		case strings.HasPrefix(n, ".."):
			_ = os.RemoveAll(filepath.Join(dir, n)) // the previous versions
		case !top[n]:
			_ = os.Remove(filepath.Join(dir, n)) // a name no longer present
		}
	}
	return true, nil
}

// sameContent reports whether dir holds exactly files.
func sameContent(dir string, files map[string]VolumeFile) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		f, ok := files[filepath.ToSlash(rel)]
		if !ok {
			return os.ErrNotExist
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() != f.Mode.Perm() {
			return os.ErrNotExist
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.Data) {
			return os.ErrNotExist
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}
