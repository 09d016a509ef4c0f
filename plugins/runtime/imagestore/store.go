// Package imagestore is kubelab's local container image store: OCI image
// archives and OCI image layout directories are imported into a directory
// (no registry, no daemon), their blobs kept content-addressed and verified,
// and each image's root filesystem unpacked once, on demand, for the
// process runtime to use as the read-only lower layer of its containers.
//
// Layout of a store's root directory:
//
//	root/
//	  blobs/sha256/<hex>   content-addressed blobs (manifests, configs, layers)
//	  images.json          the image records: names → manifest, config, layers
//	  rootfs/<id-hex>/     unpacked root filesystems, one per image ID
//	  tmp/                 staging for imports and unpacks in progress
//	  lock                 flock(2)ed while images.json is read-modified-written
//
// Every change is staged under tmp/ and made visible by a rename, so a crash
// mid-import or mid-unpack leaves no half-visible image: at worst an orphan
// under tmp/, which Open removes. Several processes (a running runtime and
// `kubelab runtime import`) may share one root: changes to images.json are
// serialised with flock(2), and readers re-read it when it changed.
//
// Image references are normalised like Kubernetes and containerd's CRI do:
// "busybox" is "docker.io/library/busybox:latest", "example.com/app" is
// "example.com/app:latest", and "name@sha256:…" is a digest reference.
package imagestore

import (
	_ "crypto/sha256" // registers SHA-256 for go-digest
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kubelab/kubelab/spec"
)

// Image is an image held by a Store. An Image is a value: changing it does
// not change the store.
type Image struct {
	// ID is the digest of the image's config blob, "sha256:<hex>", as
	// Docker, containerd and CRI use it.
	ID string
	// RepoTags are the image's normalised names with a tag, e.g.
	// "docker.io/library/busybox:latest", sorted. It may be empty for an
	// image imported without a name.
	RepoTags []string
	// RepoDigests are "<repository>@<digest>" for each repository the image
	// is named in, sorted; the digest is the one index.json named: the
	// manifest's, or for a multi-platform image its index's, as registries
	// and containerd report it.
	RepoDigests []string
	// ManifestDigest is the digest of the image manifest, the one selected
	// for this platform from a multi-platform index.
	ManifestDigest digest.Digest
	// Size is the number of bytes the image occupies in the store: its
	// manifest, config and (compressed) layer blobs. It is positive.
	Size int64
	// Platform is the image's OS and architecture, from its config.
	Platform v1.Platform
	// Config is the runtime configuration from the image config: User, Env,
	// Entrypoint, Cmd, WorkingDir, Labels, StopSignal, ExposedPorts, Volumes.
	Config v1.ImageConfig
	// Layers are the image's layer descriptors, lowest first.
	Layers []v1.Descriptor
}

// ErrNotFound is wrapped by every error about an image the store does not
// hold; it is spec.ErrNotFound, so errors.Is works with either.
var ErrNotFound = spec.ErrNotFound

// ErrAmbiguous is wrapped when a digest prefix matches more than one image.
var ErrAmbiguous = errors.New("ambiguous image reference")

// notFound is the error for a reference the store cannot resolve.
func notFound(ref string) error {
	return fmt.Errorf("image %q not found locally (import it with `kubelab runtime import`): %w", ref, ErrNotFound)
}

// Store is a local image store under one root directory. A Store is safe for
// concurrent use by several goroutines, and several processes may open the
// same root.
type Store struct {
	root string

	// writeMu serialises this process's writers of images.json; the flock
	// on root/lock serialises them with other processes'.
	writeMu sync.Mutex

	mu    sync.Mutex // guards the fields below: the cached images.json
	cache *catalog
	stamp fileStamp
}

// Open opens the image store under root, creating the directory and its
// layout when missing, and removes what an interrupted import or unpack left
// under root/tmp (entries no live process holds a lock on).
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("image store root: empty path: %w", spec.ErrInvalid)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store root %q: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "blobs"), filepath.Join(abs, "rootfs"), filepath.Join(abs, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	// The root itself must let unprivileged container users traverse into
	// rootfs/ (containers run as any uid); blobs stay private.
	for _, d := range []string{abs, filepath.Join(abs, "rootfs")} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	s := &Store{root: abs}
	s.cleanTmp()
	if err := s.collectGarbage(); err != nil {
		return nil, err
	}
	return s, nil
}

// collectGarbage removes what a crash between writing images.json and
// cleaning up after a Remove can leave: blobs and unpacked root filesystems
// of images the catalog no longer has. It runs under the store's write lock,
// so no import is between staging and committing its blobs.
func (s *Store) collectGarbage() error {
	return s.update(func(cat *catalog) (func(), error) {
		used := cat.blobsInUse()
		blobDirs, _ := os.ReadDir(filepath.Join(s.root, "blobs"))
		for _, alg := range blobDirs {
			entries, _ := os.ReadDir(filepath.Join(s.root, "blobs", alg.Name()))
			for _, e := range entries {
				d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
				if !used[d] {
					_ = os.Remove(filepath.Join(s.root, "blobs", alg.Name(), e.Name()))
				}
			}
		}
		ids := map[string]bool{}
		for id := range cat.Images {
			ids[digest.Digest(id).Encoded()] = true
		}
		entries, _ := os.ReadDir(filepath.Join(s.root, "rootfs"))
		var orphans []string
		for _, e := range entries {
			if e.IsDir() && !ids[e.Name()] {
				orphans = append(orphans, "sha256:"+e.Name())
			}
		}
		return func() {
			for _, id := range orphans {
				s.removeRootfs(id)
			}
		}, nil
	})
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// List returns every image in the store, sorted by ID.
func (s *Store) List() ([]Image, error) {
	cat, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(cat.Images))
	for _, r := range cat.Images {
		out = append(out, r.image())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns the image ref refers to: a name (normalised: "busybox" finds
// "docker.io/library/busybox:latest"), a "name@sha256:…" digest reference,
// an image ID ("sha256:<hex>" or "<hex>"), or an unambiguous prefix of an
// image ID or manifest digest (with or without "sha256:"). An unknown ref
// gives an error wrapping ErrNotFound (= spec.ErrNotFound); a prefix that
// matches several images wraps ErrAmbiguous.
func (s *Store) Get(ref string) (Image, error) {
	cat, err := s.load()
	if err != nil {
		return Image{}, err
	}
	r, err := cat.resolve(ref)
	if err != nil {
		return Image{}, err
	}
	return r.image(), nil
}

// Remove removes the image ref refers to (resolved as by Get) with all its
// names, its unpacked root filesystem and the blobs no other image uses.
// It does not know whether containers still use the root filesystem: the
// runtime must not remove an image its containers run from.
func (s *Store) Remove(ref string) error {
	return s.update(func(cat *catalog) (func(), error) {
		r, err := cat.resolve(ref)
		if err != nil {
			return nil, err
		}
		delete(cat.Images, r.ID)
		used := cat.blobsInUse()
		var garbage []digest.Digest
		for _, d := range r.blobs() {
			if !used[d] {
				garbage = append(garbage, d)
			}
		}
		id := r.ID
		// After images.json no longer names the image: drop its rootfs
		// (under its unpack lock, so no unpack of it is in flight) and its
		// unshared blobs. A crash in between leaves only unreferenced files.
		return func() {
			s.removeRootfs(id)
			for _, d := range garbage {
				_ = os.Remove(s.blobPath(d))
			}
		}, nil
	})
}

// User splits the image config's User the way CRI reports an image's user
// (as containerd does): the part before any ":group" is either a numeric
// UID (isUID true) or a user name. An image without a user gives
// (0, false, ""): the runtime's default, root.
func (img Image) User() (uid int64, isUID bool, username string) {
	u, _, _ := strings.Cut(img.Config.User, ":")
	if u == "" {
		return 0, false, ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil && n >= 0 {
		return n, true, ""
	}
	return 0, false, u
}
