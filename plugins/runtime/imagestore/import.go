package imagestore

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kubelab/kubelab/spec"
)

// Media types of Docker's image format (schema 2), which `docker save` and
// older exports still use inside OCI layouts.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// AnnotationContainerdImageName is the index annotation containerd writes
// with an image's full name; the OCI ref.name annotation then holds only
// the tag.
const AnnotationContainerdImageName = "io.containerd.image.name"

// maxJSONBlob bounds the manifests, indexes and configs read into memory.
const maxJSONBlob = 8 << 20

// Import imports every image named in an OCI image archive — a tar (or
// gzip-compressed tar) of an OCI image layout, as `ctr images export` and
// skopeo's oci-archive: transport write — or an OCI image layout directory
// at path. Image names come from each index.json descriptor's
// "io.containerd.image.name" and "org.opencontainers.image.ref.name"
// annotations, normalised; a ref.name that is only a tag (containerd's
// exports) is ignored when the containerd name is present. Multi-platform
// indexes are resolved to the host's platform (linux/GOARCH); an image
// for another platform is refused.
//
// Every blob's digest and size is verified against its descriptor. A name
// that already names another image moves to the new one. Import returns the
// imported images; it is all-or-nothing: on error, nothing new is visible.
func (s *Store) Import(ctx context.Context, path string) ([]Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	stage, err := s.newTmpDir("import-")
	if err != nil {
		return nil, err
	}
	defer stage.Close()
	src := &layoutSource{stage: stage.path}
	if fi.IsDir() {
		src.dir = path
	} else {
		if err := extractArchive(ctx, path, stage.path); err != nil {
			return nil, fmt.Errorf("import %q: %w", path, err)
		}
		src.dir = stage.path
		src.staged = true
	}
	recs, err := src.resolve(ctx)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("import %q: the layout's index.json lists no image for %s/%s: %w", path, runtime.GOOS, runtime.GOARCH, spec.ErrInvalid)
	}
	var out []Image
	err = s.update(func(cat *catalog) (func(), error) {
		for _, r := range recs {
			for _, d := range r.blobs() {
				if err := src.commitBlob(d, s.blobPath(d)); err != nil {
					return nil, err
				}
			}
		}
		out = out[:0]
		for _, r := range recs {
			cat.put(r)
		}
		for _, r := range recs {
			out = append(out, cat.Images[r.ID].image())
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	return out, nil
}

// put adds r to the catalog, merging with an image of the same ID and
// taking its names away from any other image.
func (c *catalog) put(r *record) {
	taken := map[string]bool{}
	for _, n := range r.Names {
		taken[n] = true
	}
	for id, o := range c.Images {
		if id == r.ID {
			continue
		}
		var keep []string
		for _, n := range o.Names {
			if !taken[n] {
				keep = append(keep, n)
			}
		}
		o.Names = keep
	}
	if old, ok := c.Images[r.ID]; ok {
		r.Names = union(old.Names, r.Names)
		if old.target() == r.target() {
			r.DigestRepos = union(old.DigestRepos, r.DigestRepos)
		}
	}
	c.Images[r.ID] = r
}

// union returns the sorted union of a and b, without duplicates.
func union(a, b []string) []string {
	set := map[string]bool{}
	for _, s := range append(append([]string{}, a...), b...) {
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// blobPath is where the store keeps blob d.
func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), d.Encoded())
}

// extractArchive writes the OCI layout in the tar (or tar.gz) at path to
// dir: oci-layout, index.json and blobs/<alg>/<hex>, each blob verified
// against its name as it is written. Other entries (Docker's manifest.json
// and repositories) are skipped; paths that would leave dir are an error.
func extractArchive(ctx context.Context, path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a valid image archive (tar): %w", err)
		}
		name, err := cleanArchivePath(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("archive entry %q: unexpected type %q in an OCI layout: %w", hdr.Name, string(hdr.Typeflag), spec.ErrInvalid)
		}
		switch {
		case name == v1.ImageLayoutFile || name == v1.ImageIndexFile:
			if hdr.Size > maxJSONBlob {
				return fmt.Errorf("archive entry %q: too large: %w", hdr.Name, spec.ErrInvalid)
			}
			if err := writeFile(filepath.Join(dir, name), tr, "", -1); err != nil {
				return err
			}
		case strings.HasPrefix(name, v1.ImageBlobsDir+"/"):
			parts := strings.Split(name, "/")
			if len(parts) != 3 {
				return fmt.Errorf("archive entry %q: not blobs/<algorithm>/<encoded>: %w", hdr.Name, spec.ErrInvalid)
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
			if err := d.Validate(); err != nil {
				return fmt.Errorf("archive entry %q: %v: %w", hdr.Name, err, spec.ErrInvalid)
			}
			if err := os.MkdirAll(filepath.Join(dir, v1.ImageBlobsDir, parts[1]), 0o700); err != nil {
				return err
			}
			if err := writeFile(filepath.Join(dir, name), tr, d, hdr.Size); err != nil {
				return err
			}
		default:
			// manifest.json, repositories (Docker's format) and anything
			// else outside the layout: not needed.
		}
	}
}

// cleanArchivePath returns the slash-separated, relative path of an archive
// entry, rejecting absolute paths and any ".." component.
func cleanArchivePath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("archive entry %q: absolute path: %w", name, spec.ErrInvalid)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("archive entry %q: path escapes the archive: %w", name, spec.ErrInvalid)
		}
	}
	return path.Clean(name), nil
}

// writeFile copies r into a new file at dst. When d is set, the content must
// have digest d and, when size >= 0, that many bytes; otherwise dst is
// removed and an error returned.
func writeFile(dst string, r io.Reader, d digest.Digest, size int64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var w io.Writer = f
	var verifier digest.Verifier
	if d != "" {
		verifier = d.Verifier()
		w = io.MultiWriter(f, verifier)
	}
	n, err := io.Copy(w, r)
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("blob %s: %d bytes, expected %d: %w", d, n, size, spec.ErrInvalid)
	}
	if err == nil && verifier != nil && !verifier.Verified() {
		err = fmt.Errorf("blob %s: content does not match its digest: %w", d, spec.ErrInvalid)
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// layoutSource reads an OCI image layout: either a directory the user named
// (its blobs verified as they are copied into the staging directory) or one
// extracted into the staging directory (already verified).
type layoutSource struct {
	dir    string // the layout's root
	stage  string // staging directory for verified blobs
	staged bool   // dir == stage: every blob there is verified
}

// stagedBlob returns the path of blob desc in the staging directory, copying
// and verifying it first when the layout is a user's directory, and checks
// its size against the descriptor.
func (l *layoutSource) stagedBlob(desc v1.Descriptor) (string, error) {
	if err := desc.Digest.Validate(); err != nil {
		return "", fmt.Errorf("descriptor digest %q: %v: %w", desc.Digest, err, spec.ErrInvalid)
	}
	dst := filepath.Join(l.stage, v1.ImageBlobsDir, string(desc.Digest.Algorithm()), desc.Digest.Encoded())
	if !l.staged {
		if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
			src, err := os.Open(filepath.Join(l.dir, v1.ImageBlobsDir, string(desc.Digest.Algorithm()), desc.Digest.Encoded()))
			if err != nil {
				return "", fmt.Errorf("blob %s: %w", desc.Digest, err)
			}
			defer src.Close()
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return "", err
			}
			if err := writeFile(dst, src, desc.Digest, -1); err != nil {
				return "", err
			}
		}
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return "", fmt.Errorf("blob %s missing from the layout: %w", desc.Digest, err)
	}
	if fi.Size() != desc.Size {
		return "", fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", desc.Digest, fi.Size(), desc.Size, spec.ErrInvalid)
	}
	return dst, nil
}

// readJSON reads blob desc and decodes it into v.
func (l *layoutSource) readJSON(desc v1.Descriptor, v any) error {
	if desc.Size > maxJSONBlob || desc.Size < 0 {
		return fmt.Errorf("blob %s: size %d out of bounds for %s: %w", desc.Digest, desc.Size, desc.MediaType, spec.ErrInvalid)
	}
	p, err := l.stagedBlob(desc)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("blob %s (%s): %v: %w", desc.Digest, desc.MediaType, err, spec.ErrInvalid)
	}
	return nil
}

// commitBlob moves staged blob d to dst in the store unless it is there.
func (l *layoutSource) commitBlob(d digest.Digest, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	src := filepath.Join(l.stage, v1.ImageBlobsDir, string(d.Algorithm()), d.Encoded())
	return os.Rename(src, dst)
}

// resolve reads the layout's index and returns one record per image: every
// top-level manifest, or the host platform's manifest of a top-level index.
// All blobs the records reference are staged and verified.
func (l *layoutSource) resolve(ctx context.Context) ([]*record, error) {
	var layout v1.ImageLayout
	b, err := os.ReadFile(filepath.Join(l.dir, v1.ImageLayoutFile))
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no readable %s file): %w", v1.ImageLayoutFile, spec.ErrInvalid)
	}
	if err := json.Unmarshal(b, &layout); err != nil || layout.Version != v1.ImageLayoutVersion {
		return nil, fmt.Errorf("%s: want imageLayoutVersion %q: %w", v1.ImageLayoutFile, v1.ImageLayoutVersion, spec.ErrInvalid)
	}
	b, err = os.ReadFile(filepath.Join(l.dir, v1.ImageIndexFile))
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no readable %s): %w", v1.ImageIndexFile, spec.ErrInvalid)
	}
	var idx v1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", v1.ImageIndexFile, err, spec.ErrInvalid)
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("%s: schemaVersion %d, want 2: %w", v1.ImageIndexFile, idx.SchemaVersion, spec.ErrInvalid)
	}
	if idx.MediaType != "" && idx.MediaType != v1.MediaTypeImageIndex {
		return nil, fmt.Errorf("%s: mediaType %q: %w", v1.ImageIndexFile, idx.MediaType, spec.ErrInvalid)
	}
	byID := map[string]*record{}
	var order []string
	for _, desc := range idx.Manifests {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		names, digestRepos, err := namesOf(desc)
		if err != nil {
			return nil, err
		}
		mdesc, err := l.selectManifest(desc, 0)
		if err != nil {
			return nil, err
		}
		if mdesc == nil {
			if len(names) > 0 {
				return nil, fmt.Errorf("image %v has no manifest for %s/%s: %w", names, runtime.GOOS, runtime.GOARCH, spec.ErrInvalid)
			}
			continue
		}
		r, err := l.readImage(*mdesc)
		if err != nil {
			return nil, err
		}
		r.Names, r.DigestRepos, r.Target = names, digestRepos, desc.Digest
		if old, ok := byID[r.ID]; ok {
			old.Names = union(old.Names, r.Names)
			old.DigestRepos = union(old.DigestRepos, r.DigestRepos)
			continue
		}
		byID[r.ID] = r
		order = append(order, r.ID)
	}
	out := make([]*record, 0, len(order))
	for _, id := range order {
		out = append(out, byID[id])
	}
	return out, nil
}

// namesOf returns the normalised names an index descriptor's annotations
// give: tagged names, and repositories of digest names.
func namesOf(desc v1.Descriptor) (names, digestRepos []string, err error) {
	var raw []string
	full := desc.Annotations[AnnotationContainerdImageName]
	if full != "" {
		raw = append(raw, full)
	}
	if rn := desc.Annotations[v1.AnnotationRefName]; rn != "" {
		// containerd puts only the tag in ref.name next to the full name.
		if !(full != "" && !strings.ContainsAny(rn, "/:@")) {
			raw = append(raw, rn)
		}
	}
	for _, n := range raw {
		ref, err := ParseReference(n)
		if err != nil {
			return nil, nil, fmt.Errorf("image name annotation: %w", err)
		}
		if ref.Digest != "" {
			if ref.Digest != desc.Digest {
				// A digest name must name the manifest it annotates.
				return nil, nil, fmt.Errorf("image name %q does not match its manifest %s: %w", n, desc.Digest, spec.ErrInvalid)
			}
			digestRepos = union(digestRepos, []string{ref.Repository})
			continue
		}
		names = union(names, []string{ref.String()})
	}
	return names, digestRepos, nil
}

// selectManifest returns the image manifest descriptor desc stands for: desc
// itself, or for an index the entry for the host platform (nil when none).
func (l *layoutSource) selectManifest(desc v1.Descriptor, depth int) (*v1.Descriptor, error) {
	switch desc.MediaType {
	case v1.MediaTypeImageManifest, mediaTypeDockerManifest:
		return &desc, nil
	case v1.MediaTypeImageIndex, mediaTypeDockerManifestList:
	default:
		return nil, fmt.Errorf("descriptor %s: unsupported media type %q: %w", desc.Digest, desc.MediaType, spec.ErrInvalid)
	}
	if depth > 4 {
		return nil, fmt.Errorf("index %s: nested too deep: %w", desc.Digest, spec.ErrInvalid)
	}
	var idx v1.Index
	if err := l.readJSON(desc, &idx); err != nil {
		return nil, err
	}
	for _, m := range idx.Manifests {
		if m.MediaType == v1.MediaTypeImageIndex || m.MediaType == mediaTypeDockerManifestList {
			if got, err := l.selectManifest(m, depth+1); err != nil || got != nil {
				return got, err
			}
			continue
		}
		if m.Platform == nil || (m.Platform.OS == runtime.GOOS && m.Platform.Architecture == runtime.GOARCH) {
			if m.Platform == nil && len(idx.Manifests) > 1 {
				continue // attestations and the like carry no platform
			}
			return l.selectManifest(m, depth+1)
		}
	}
	return nil, nil
}

// layerTypes are the layer media types Unpacked can apply.
var layerTypes = map[string]bool{
	v1.MediaTypeImageLayer:                     true,
	v1.MediaTypeImageLayerGzip:                 true,
	v1.MediaTypeImageLayerNonDistributable:     true, //nolint:staticcheck // still found in the wild
	v1.MediaTypeImageLayerNonDistributableGzip: true, //nolint:staticcheck
	mediaTypeDockerLayerGzip:                   true,
	mediaTypeDockerLayerForeign:                true,
}

// readImage reads an image manifest and its config into a record.
func (l *layoutSource) readImage(mdesc v1.Descriptor) (*record, error) {
	var m v1.Manifest
	if err := l.readJSON(mdesc, &m); err != nil {
		return nil, err
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest %s: schemaVersion %d, want 2: %w", mdesc.Digest, m.SchemaVersion, spec.ErrInvalid)
	}
	if m.MediaType != "" && m.MediaType != mdesc.MediaType {
		return nil, fmt.Errorf("manifest %s: mediaType %q, descriptor says %q: %w", mdesc.Digest, m.MediaType, mdesc.MediaType, spec.ErrInvalid)
	}
	switch m.Config.MediaType {
	case v1.MediaTypeImageConfig, mediaTypeDockerConfig:
	default:
		return nil, fmt.Errorf("manifest %s: config media type %q is not an image config: %w", mdesc.Digest, m.Config.MediaType, spec.ErrInvalid)
	}
	var cfg v1.Image
	if err := l.readJSON(m.Config, &cfg); err != nil {
		return nil, err
	}
	if cfg.RootFS.Type != "layers" {
		return nil, fmt.Errorf("config %s: rootfs type %q, want \"layers\": %w", m.Config.Digest, cfg.RootFS.Type, spec.ErrInvalid)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers but its config %d diff IDs: %w", mdesc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs), spec.ErrInvalid)
	}
	for i, ld := range m.Layers {
		if !layerTypes[ld.MediaType] {
			return nil, fmt.Errorf("manifest %s layer %d: unsupported media type %q: %w", mdesc.Digest, i, ld.MediaType, spec.ErrInvalid)
		}
		if err := cfg.RootFS.DiffIDs[i].Validate(); err != nil {
			return nil, fmt.Errorf("config %s diff ID %d: %v: %w", m.Config.Digest, i, err, spec.ErrInvalid)
		}
		if _, err := l.stagedBlob(ld); err != nil {
			return nil, err
		}
	}
	if (cfg.OS != "" && cfg.OS != runtime.GOOS) || (cfg.Architecture != "" && cfg.Architecture != runtime.GOARCH) {
		return nil, fmt.Errorf("image %s is for %s/%s, not %s/%s: %w", m.Config.Digest, cfg.OS, cfg.Architecture, runtime.GOOS, runtime.GOARCH, spec.ErrInvalid)
	}
	return &record{
		ID:          m.Config.Digest.String(),
		Manifest:    v1.Descriptor{MediaType: mdesc.MediaType, Digest: mdesc.Digest, Size: mdesc.Size},
		Config:      v1.Descriptor{MediaType: m.Config.MediaType, Digest: m.Config.Digest, Size: m.Config.Size},
		Layers:      append([]v1.Descriptor(nil), m.Layers...),
		DiffIDs:     append([]digest.Digest(nil), cfg.RootFS.DiffIDs...),
		Platform:    v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant},
		ImageConfig: cfg.Config,
	}, nil
}
