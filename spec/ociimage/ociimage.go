// Package ociimage writes single-layer OCI images as OCI image archives
// (a tar of an OCI image layout, what `ctr images import` and skopeo's
// oci-archive: transport read) or as OCI image layout directories, with no
// registry and no daemon. Output is deterministic: the same Spec gives the
// same bytes, so the same digests, on every machine and every run (fixed
// timestamps and owners, sorted entries, reproducible gzip).
//
// It also knows kubelab's test images: the workload image, the pause image
// and a busybox image made from Debian's busybox-static (see images.go), and
// reads archives back strictly (ReadArchive) to check what it wrote.
//
// It lives under spec/ because the test images are part of what the runtime
// contract's tests share: the conformance suites, the runtime plugins' own
// tests and the tools all build or read the same images, and spec/... is
// the one place all of them may import. It imports no other kubelab
// package.
//
// The command line is `kubelab image` (tools/kubelab/cli/image.go):
//
//	make images                                   # = the two lines below
//	CGO_ENABLED=0 go build -o _out/bin/workload ./tools/workload
//	kubelab image build --workload _out/bin/workload --out _out/images
//	kubelab image binary example.com/tool:1 ./tool -o tool.tar -- --flag   # any static binary
//	kubelab image check _out/images/*.tar                                  # strict read-back
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers SHA-256 for go-digest
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Epoch is the timestamp of every file, layer and config ociimage writes.
var Epoch = time.Unix(0, 0).UTC()

// AnnotationContainerdImageName is the index annotation containerd reads an
// imported image's full name from.
const AnnotationContainerdImageName = "io.containerd.image.name"

// File is one entry of an image's layer.
type File struct {
	// Path is the entry's absolute path in the image, e.g. "/bin/sh".
	Path string
	// Mode holds the permission bits (and setuid/setgid/sticky) and the type:
	// 0 for a regular file, fs.ModeDir, or fs.ModeSymlink.
	Mode fs.FileMode
	// Content is a regular file's content, unless Source is set.
	Content []byte
	// Source, when set, is a host file whose content a regular file gets.
	Source string
	// Linkname is a symbolic link's target.
	Linkname string
	// UID and GID own the entry (0 by default).
	UID, GID int
}

// Spec describes an image to write.
type Spec struct {
	// Names are the image's names, e.g. "kubelab.local/pause:latest"; each
	// gets its own index.json entry annotated with the name. They are
	// written as given: use fully qualified, normalised names.
	Names []string
	// Files are the layer's entries. Parent directories that are not listed
	// are added (root-owned, 0755).
	Files []File
	// Config is the image's runtime configuration (Entrypoint, Cmd, Env,
	// WorkingDir, User, ...).
	Config v1.ImageConfig
	// Architecture is the GOARCH the image is for; empty means the host's.
	Architecture string
}

// Image is a built image: every blob, plus the descriptors that tie them
// together.
type Image struct {
	// Manifest is the image manifest's descriptor (without annotations).
	Manifest v1.Descriptor
	// Config is the config blob's descriptor; its digest is the image ID.
	Config v1.Descriptor
	// Layer is the single layer's descriptor.
	Layer v1.Descriptor
	// DiffID is the digest of the uncompressed layer.
	DiffID digest.Digest
	// Index is the content of index.json.
	Index v1.Index
	// Blobs are every blob by digest.
	Blobs map[digest.Digest][]byte
}

// ID returns the image ID: the config's digest.
func (img *Image) ID() string { return img.Config.Digest.String() }

// Build builds the image s describes, in memory.
func Build(s Spec) (*Image, error) {
	if len(s.Names) == 0 {
		return nil, fmt.Errorf("image spec without a name")
	}
	arch := s.Architecture
	if arch == "" {
		arch = runtime.GOARCH
	}
	raw, err := layerTar(s.Files)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	// A zero gzip header (no name, no mtime) keeps the output reproducible.
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	img := &Image{Blobs: map[digest.Digest][]byte{}, DiffID: digest.FromBytes(raw)}
	img.Layer = img.add(v1.MediaTypeImageLayerGzip, gz.Bytes())
	created := Epoch
	cfg := v1.Image{
		Created:  &created,
		Platform: v1.Platform{OS: "linux", Architecture: arch},
		Config:   s.Config,
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{img.DiffID}},
		History:  []v1.History{{Created: &created, CreatedBy: "kubelab ociimage", Comment: "single layer"}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	img.Config = img.add(v1.MediaTypeImageConfig, cb)
	m := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    img.Config,
		Layers:    []v1.Descriptor{img.Layer},
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	img.Manifest = img.add(v1.MediaTypeImageManifest, mb)
	img.Index = v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex}
	for _, n := range s.Names {
		d := img.Manifest
		d.Platform = &v1.Platform{OS: "linux", Architecture: arch}
		d.Annotations = map[string]string{
			v1.AnnotationRefName:          n,
			AnnotationContainerdImageName: n,
		}
		img.Index.Manifests = append(img.Index.Manifests, d)
	}
	return img, nil
}

// add stores a blob and returns its descriptor.
func (img *Image) add(mediaType string, b []byte) v1.Descriptor {
	d := digest.FromBytes(b)
	img.Blobs[d] = b
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// layoutFiles returns the OCI layout's files, path → content, and their
// paths sorted.
func (img *Image) layoutFiles() (map[string][]byte, []string, error) {
	files := map[string][]byte{}
	lb, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return nil, nil, err
	}
	files[v1.ImageLayoutFile] = lb
	ib, err := json.Marshal(img.Index)
	if err != nil {
		return nil, nil, err
	}
	files[v1.ImageIndexFile] = ib
	for d, b := range img.Blobs {
		files[path.Join(v1.ImageBlobsDir, string(d.Algorithm()), d.Encoded())] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return files, names, nil
}

// WriteArchive writes the image as an OCI image archive (uncompressed tar
// of the layout: oci-layout, index.json, blobs/sha256/…) to w.
func (img *Image) WriteArchive(w io.Writer) error {
	files, names, err := img.layoutFiles()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	dirs := []string{v1.ImageBlobsDir + "/", v1.ImageBlobsDir + "/" + string(digest.SHA256) + "/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: Epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
	}
	for _, n := range names {
		b := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: Epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteArchiveFile writes the image as an OCI image archive at path,
// atomically (a temporary file renamed into place).
func (img *Image) WriteArchiveFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := img.WriteArchive(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteLayout writes the image as an OCI image layout directory at dir,
// which must not exist or be empty.
func (img *Image) WriteLayout(dir string) error {
	files, names, err := img.layoutFiles()
	if err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// layerTar writes files as a deterministic tar: parents before children,
// sorted, fixed times, numeric owners only.
func layerTar(files []File) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p := path.Clean("/" + f.Path)
		if p == "/" || f.Path == "" || !strings.HasPrefix(f.Path, "/") {
			return nil, fmt.Errorf("layer entry %q: want an absolute path below /", f.Path)
		}
		if _, dup := entries[p]; dup {
			return nil, fmt.Errorf("layer entry %q listed twice", p)
		}
		f.Path = p
		entries[p] = f
	}
	for p := range entries {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = File{Path: d, Mode: fs.ModeDir | 0o755}
			} else if !entries[d].Mode.IsDir() {
				return nil, fmt.Errorf("layer entry %q: parent %q is not a directory", p, d)
			}
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := entries[p]
		h := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    int64(f.Mode.Perm()),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: Epoch,
			Format:  tar.FormatPAX,
		}
		if f.Mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if f.Mode&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if f.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		var content []byte
		switch {
		case f.Mode.IsDir():
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case f.Mode&fs.ModeSymlink != 0:
			if f.Linkname == "" {
				return nil, fmt.Errorf("layer entry %q: symlink without a target", p)
			}
			h.Typeflag = tar.TypeSymlink
			h.Linkname = f.Linkname
			h.Mode = 0o777
		case f.Mode.IsRegular():
			h.Typeflag = tar.TypeReg
			content = f.Content
			if f.Source != "" {
				b, err := os.ReadFile(f.Source)
				if err != nil {
					return nil, fmt.Errorf("layer entry %q: %w", p, err)
				}
				content = b
			}
			h.Size = int64(len(content))
		default:
			return nil, fmt.Errorf("layer entry %q: unsupported mode %v", p, f.Mode)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CheckStatic returns an error unless the file at path is a statically
// linked ELF executable (no program interpreter), which is what a
// single-binary image needs.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (build it with CGO_ENABLED=0)", path)
		}
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: ELF type %v is not an executable", path, f.Type)
	}
	return nil
}
