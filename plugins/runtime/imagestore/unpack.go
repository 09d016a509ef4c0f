package imagestore

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kubelab/kubelab/spec"
)

// Whiteout markers of the OCI layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh."
)

// Unpacked returns the directory holding the root filesystem of the image
// ref refers to, unpacking its layers in order the first time (whiteouts
// honoured, ownership and modes kept, device nodes only when running as
// root, every path kept inside the directory). The directory is shared by
// every caller and must be treated as read-only: the runtime mounts it as
// the lower layer of an overlay. Concurrent calls for one image, in one
// process or several, unpack it once; a failed or interrupted unpack leaves
// nothing visible. Each layer's uncompressed content is verified against
// the config's diff ID. Unpacking is meant to run as root; as another user
// it is best effort: ownership is not kept, device nodes are skipped, and a
// read-only directory that a later layer writes into fails the unpack.
func (s *Store) Unpacked(ctx context.Context, ref string) (dir string, err error) {
	cat, err := s.load()
	if err != nil {
		return "", err
	}
	r, err := cat.resolve(ref)
	if err != nil {
		return "", err
	}
	dir = s.rootfsPath(r.ID)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	unlock, err := lockStable(dir + ".lock")
	if err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	defer unlock()
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	// Removed while we waited for the lock?
	if cat, err = s.load(); err != nil {
		return "", err
	}
	if _, ok := cat.Images[r.ID]; !ok {
		return "", notFound(ref)
	}
	stage, err := s.newTmpDir("rootfs-")
	if err != nil {
		return "", err
	}
	defer stage.Close()
	target := filepath.Join(stage.path, "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	if err := os.Chmod(target, 0o755); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	for i, l := range r.Layers {
		if err := applyLayer(ctx, s.blobPath(l.Digest), l, r.DiffIDs[i], target); err != nil {
			return "", fmt.Errorf("unpack image %q (%s) layer %d: %w", ref, r.ID, i, err)
		}
	}
	if err := os.Rename(target, dir); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	return dir, nil
}

// rootfsPath is where image id's root filesystem is unpacked.
func (s *Store) rootfsPath(id string) string {
	return filepath.Join(s.root, "rootfs", digest.Digest(id).Encoded())
}

// removeRootfs removes image id's unpacked root filesystem, if any, under
// its unpack lock, by renaming it into a staging directory first so that a
// crash never leaves a partial tree under rootfs/.
func (s *Store) removeRootfs(id string) {
	dir := s.rootfsPath(id)
	unlock, err := lockStable(dir + ".lock")
	if err != nil {
		return
	}
	defer unlock()
	if _, err := os.Lstat(dir); err == nil {
		if trash, err := s.newTmpDir("trash-"); err == nil {
			_ = os.Rename(dir, filepath.Join(trash.path, "rootfs"))
			trash.Close()
		}
	}
	// Waiters on this lock file notice it is gone and lock the new one.
	_ = os.Remove(dir + ".lock")
}

// lockStable is lockFile for a lock file that may be removed by its holder:
// after locking, it checks the path still names the locked file, and
// starts again when it does not.
func lockStable(path string) (func(), error) {
	for {
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
		fi1, err1 := f.Stat()
		fi2, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi1, fi2) {
			return func() { f.Close() }, nil
		}
		f.Close()
	}
}

// isGzipLayer reports whether a layer's media type says gzip.
func isGzipLayer(mt string) bool {
	return strings.HasSuffix(mt, "+gzip") || strings.HasSuffix(mt, ".tar.gzip")
}

// applyLayer applies the layer blob at blobPath onto the tree at target.
func applyLayer(ctx context.Context, blobPath string, desc v1.Descriptor, diffID digest.Digest, target string) error {
	f, err := os.Open(blobPath)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	magic, _ := br.Peek(2)
	if isGzipLayer(desc.MediaType) || (len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		defer zr.Close()
		r = zr
	}
	verifier := diffID.Verifier()
	tee := io.TeeReader(r, verifier)
	root, err := os.OpenRoot(target)
	if err != nil {
		return err
	}
	defer root.Close()
	a := &applier{root: root, created: map[string]bool{}, asRoot: os.Geteuid() == 0}
	tr := tar.NewReader(tee)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		if err := a.apply(hdr, tr); err != nil {
			return fmt.Errorf("layer %s entry %q: %w", desc.Digest, hdr.Name, err)
		}
	}
	// The tar's trailing padding is part of the diff ID.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if !verifier.Verified() {
		return fmt.Errorf("layer %s: uncompressed content does not match diff ID %s: %w", desc.Digest, diffID, spec.ErrInvalid)
	}
	a.finish()
	return nil
}

// applier applies one layer's entries inside root.
type applier struct {
	root    *os.Root
	asRoot  bool            // running as root: keep ownership, create devices
	created map[string]bool // paths this layer wrote (opaque whiteouts keep them)
	dirs    []dirTimes      // directory times to set once the layer is done
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

// layerPath returns an entry's path relative to the layer root ("." for
// the root itself), rejecting absolute paths and ".." components.
func layerPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path in layer: %w", spec.ErrInvalid)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("path escapes the root filesystem: %w", spec.ErrInvalid)
		}
	}
	return path.Clean(name), nil
}

func (a *applier) apply(hdr *tar.Header, content io.Reader) error {
	name, err := layerPath(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(name)
	dir = path.Clean(dir)
	if strings.HasPrefix(base, whiteoutMeta) && base != whiteoutOpaque || strings.Contains("/"+dir+"/", "/"+whiteoutMeta) {
		return nil // AUFS bookkeeping (.wh..wh.plnk and the like), not content
	}
	switch {
	case base == whiteoutOpaque:
		return a.opaque(dir)
	case strings.HasPrefix(base, whiteoutPrefix):
		victim := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
		if err := a.root.RemoveAll(victim); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	if name != "." {
		if err := a.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if fi, err := a.root.Lstat(name); err == nil {
			if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
				if err := a.root.RemoveAll(name); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	a.created[name] = true
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if name != "." {
			if err := a.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // TypeRegA is still written by old tools
		f, err := a.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, content); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := a.root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		if a.asRoot {
			return a.chown(name, hdr)
		}
		return nil
	case tar.TypeLink:
		old, err := layerPath(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		// The link shares the target's inode, ownership, mode and times.
		return a.root.Link(old, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if hdr.Typeflag != tar.TypeFifo && !a.asRoot {
			delete(a.created, name)
			return nil // device nodes need root; skipped
		}
		if err := a.mknod(dir, path.Base(name), hdr); err != nil {
			if errors.Is(err, unix.EPERM) {
				delete(a.created, name)
				return nil // no mknod here (a user namespace): skipped
			}
			return err
		}
	default:
		delete(a.created, name)
		return nil // sparse files, GNU extensions: not in image layers
	}
	if a.asRoot {
		if err := a.chown(name, hdr); err != nil {
			return err
		}
	}
	// chmod after chown: chown clears setuid and setgid bits.
	if err := a.root.Chmod(name, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if err := a.setXattrs(name, hdr); err != nil {
		return err
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTimes{name: name, atime: atime, mtime: hdr.ModTime})
		return nil
	}
	return a.root.Chtimes(name, atime, hdr.ModTime)
}

// chown gives an entry the owner the layer says. An owner this user
// namespace cannot map (EINVAL) or may not give (EPERM) is left as is,
// rather than failing the unpack.
func (a *applier) chown(name string, hdr *tar.Header) error {
	err := a.root.Lchown(name, hdr.Uid, hdr.Gid)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
		return nil
	}
	return err
}

// opaque empties dir of everything lower layers put there.
func (a *applier) opaque(dir string) error {
	f, err := a.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if a.created[p] {
			continue
		}
		if err := a.root.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// mknod creates a device node or FIFO named base in directory dir.
func (a *applier) mknod(dir, base string, hdr *tar.Header) error {
	d, err := a.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	return unix.Mknodat(int(d.Fd()), base, mode, int(dev))
}

// finish sets directory times, deepest first, now that nothing more is
// written into them by this layer.
func (a *applier) finish() {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		_ = a.root.Chtimes(d.name, d.atime, d.mtime)
	}
}

// xattrPrefix marks extended attributes in PAX records.
const xattrPrefix = "SCHILY.xattr."

// setXattrs applies the entry's extended attributes (file capabilities,
// say) to a regular file or directory. Only the security. and user.
// namespaces are applied, security. only as root; a file system without
// xattr support is not an error.
func (a *applier) setXattrs(name string, hdr *tar.Header) error {
	var attrs [][2]string
	for k, v := range hdr.PAXRecords {
		if attr, ok := strings.CutPrefix(k, xattrPrefix); ok {
			if strings.HasPrefix(attr, "user.") || (a.asRoot && strings.HasPrefix(attr, "security.")) {
				attrs = append(attrs, [2]string{attr, v})
			}
		}
	}
	if len(attrs) == 0 || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir) {
		return nil // never open a FIFO or a device to set attributes
	}
	f, err := a.root.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, kv := range attrs {
		if err := unix.Fsetxattr(int(f.Fd()), kv[0], []byte(kv[1]), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				continue
			}
			return fmt.Errorf("xattr %s: %w", kv[0], err)
		}
	}
	return nil
}
