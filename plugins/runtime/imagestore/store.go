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
	"context"
	"errors"
	"fmt"

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
	// RepoDigests are "<repository>@<manifest digest>" for each repository
	// the image is named in, sorted.
	RepoDigests []string
	// ManifestDigest is the digest of the image manifest that was selected
	// for this platform.
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
}

// Open opens the image store under root, creating the directory and its
// layout when missing, and removes what an interrupted import or unpack left
// under root/tmp (only when no other process holds the store's lock).
func Open(root string) (*Store, error) {
	return nil, errors.New("imagestore: not implemented yet")
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// Import imports every image named in an OCI image archive — a tar (or
// gzip-compressed tar) of an OCI image layout, as `ctr images export` and
// skopeo's oci-archive: transport write — or an OCI image layout directory
// at path. Image names come from each index.json descriptor's
// "io.containerd.image.name" and "org.opencontainers.image.ref.name"
// annotations, normalised; a ref.name that is only a tag (containerd's
// exports) is ignored when the containerd name is present. Multi-platform
// indexes are resolved to the host's platform (linux/GOARCH).
//
// Every blob's digest and size is verified against its descriptor. A name
// that already names another image moves to the new one. Import returns the
// imported images; it is all-or-nothing: on error, nothing new is visible.
func (s *Store) Import(ctx context.Context, path string) ([]Image, error) {
	return nil, errors.New("imagestore: not implemented yet")
}

// List returns every image in the store, sorted by ID.
func (s *Store) List() ([]Image, error) {
	return nil, errors.New("imagestore: not implemented yet")
}

// Get returns the image ref refers to: a name (normalised: "busybox" finds
// "docker.io/library/busybox:latest"), a "name@sha256:…" digest reference,
// an image ID ("sha256:<hex>" or "<hex>"), or an unambiguous prefix of an
// image ID or manifest digest (with or without "sha256:"). An unknown ref
// gives an error wrapping ErrNotFound (= spec.ErrNotFound); a prefix that
// matches several images wraps ErrAmbiguous.
func (s *Store) Get(ref string) (Image, error) {
	return Image{}, notFound(ref)
}

// Remove removes the image ref refers to (resolved as by Get) with all its
// names, its unpacked root filesystem and the blobs no other image uses.
// It does not know whether containers still use the root filesystem: the
// runtime must not remove an image its containers run from.
func (s *Store) Remove(ref string) error {
	return notFound(ref)
}

// Unpacked returns the directory holding the root filesystem of the image
// ref refers to, unpacking its layers in order the first time (whiteouts
// honoured, ownership and modes kept, device nodes only when running as
// root, every path kept inside the directory). The directory is shared by
// every caller and must be treated as read-only: the runtime mounts it as
// the lower layer of an overlay. Concurrent calls for one image unpack it
// once; a failed or interrupted unpack leaves nothing visible.
func (s *Store) Unpacked(ctx context.Context, ref string) (dir string, err error) {
	return "", notFound(ref)
}
