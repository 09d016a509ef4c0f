package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Archive is an OCI image archive as ReadArchive found it.
type Archive struct {
	// Index is index.json.
	Index v1.Index
	// Manifests are the image manifests by digest.
	Manifests map[digest.Digest]v1.Manifest
	// Configs are the image configs by digest.
	Configs map[digest.Digest]v1.Image
	// Layers are each layer's entries (paths as in the tar) by digest.
	Layers map[digest.Digest][]*tar.Header
	// Blobs are every blob by digest.
	Blobs map[digest.Digest][]byte
}

// ReadArchive reads the OCI image archive at path strictly, and fails on
// anything a standard OCI layout must not hold or that kubelab's images
// never do: entries other than oci-layout, index.json and
// blobs/sha256/<hex>, duplicate or escaping paths, unknown JSON fields, a
// blob that does not match its digest or its descriptor's size, media types
// other than OCI's, an index entry without an
// org.opencontainers.image.ref.name annotation, diff IDs that do not match
// the layers, a layer entry that leaves the root, and unreferenced blobs.
// Archives are read into memory: it is meant for test images.
func ReadArchive(path string) (*Archive, error) {
	layoutFile, indexFile, blobs, err := readArchiveEntries(path)
	if err != nil {
		return nil, err
	}
	a := &Archive{
		Manifests: map[digest.Digest]v1.Manifest{},
		Configs:   map[digest.Digest]v1.Image{},
		Layers:    map[digest.Digest][]*tar.Header{},
		Blobs:     blobs,
	}
	var layout v1.ImageLayout
	if err := strictJSON(layoutFile, &layout); err != nil || layout.Version != v1.ImageLayoutVersion {
		return nil, fmt.Errorf("oci-layout missing or not version %s (%v)", v1.ImageLayoutVersion, err)
	}
	if err := readIndex(indexFile, &a.Index); err != nil {
		return nil, err
	}
	r := &archiveReader{a: a, used: map[digest.Digest]bool{}}
	for _, md := range a.Index.Manifests {
		if err := r.readImage(md); err != nil {
			return nil, err
		}
	}
	for d := range a.Blobs {
		if !r.used[d] {
			return nil, fmt.Errorf("blob %s is not referenced", d)
		}
	}
	return a, nil
}

// readArchiveEntries reads the tar at path: the oci-layout and index.json
// files and every blob (checked against its name), failing on any other,
// duplicate or non-regular entry.
func readArchiveEntries(path string) (layoutFile, indexFile []byte, blobs map[digest.Digest][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	blobs = map[digest.Digest][]byte{}
	seen := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return layoutFile, indexFile, blobs, nil
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if seen[name] {
			return nil, nil, nil, fmt.Errorf("entry %q appears twice", h.Name)
		}
		seen[name] = true
		if h.Typeflag == tar.TypeDir {
			if name != "blobs/" && name != "blobs/sha256/" {
				return nil, nil, nil, fmt.Errorf("unexpected directory %q", h.Name)
			}
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, nil, nil, fmt.Errorf("entry %q: type %q, want a regular file", h.Name, string(h.Typeflag))
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case name == v1.ImageLayoutFile:
			layoutFile = b
		case name == v1.ImageIndexFile:
			indexFile = b
		case strings.HasPrefix(name, "blobs/sha256/"):
			d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(name, "blobs/sha256/"))
			if err := d.Validate(); err != nil {
				return nil, nil, nil, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if digest.FromBytes(b) != d {
				return nil, nil, nil, fmt.Errorf("blob %s: content does not match its name", d)
			}
			blobs[d] = b
		default:
			return nil, nil, nil, fmt.Errorf("unexpected entry %q", h.Name)
		}
	}
}

// readIndex parses index.json strictly into index: an OCI image index
// listing at least one manifest.
func readIndex(indexFile []byte, index *v1.Index) error {
	if err := strictJSON(indexFile, index); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	if index.SchemaVersion != 2 || index.MediaType != v1.MediaTypeImageIndex {
		return fmt.Errorf("index.json: schemaVersion %d mediaType %q", index.SchemaVersion, index.MediaType)
	}
	if len(index.Manifests) == 0 {
		return fmt.Errorf("index.json lists no manifest")
	}
	return nil
}

// archiveReader follows an archive's index to its manifests, configs and
// layers, filling a and recording in used every blob a descriptor names.
type archiveReader struct {
	a    *Archive
	used map[digest.Digest]bool
}

// blob returns the blob d describes, checking its size and that its media
// type is one of mediaTypes, and marks it used.
func (r *archiveReader) blob(d v1.Descriptor, mediaTypes ...string) ([]byte, error) {
	b, ok := r.a.Blobs[d.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s (%s) missing", d.Digest, d.MediaType)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: %d bytes, descriptor says %d", d.Digest, len(b), d.Size)
	}
	ok = false
	for _, mt := range mediaTypes {
		ok = ok || d.MediaType == mt
	}
	if !ok {
		return nil, fmt.Errorf("blob %s: media type %q, want one of %q", d.Digest, d.MediaType, mediaTypes)
	}
	r.used[d.Digest] = true
	return b, nil
}

// readImage reads the image of one index entry: its manifest, its config
// (which must agree with the entry's platform and list a diff ID per
// layer) and its layers.
func (r *archiveReader) readImage(md v1.Descriptor) error {
	if md.Annotations[v1.AnnotationRefName] == "" {
		return fmt.Errorf("index entry %s has no %s annotation", md.Digest, v1.AnnotationRefName)
	}
	mb, err := r.blob(md, v1.MediaTypeImageManifest)
	if err != nil {
		return err
	}
	var m v1.Manifest
	if err := strictJSON(mb, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", md.Digest, err)
	}
	if m.SchemaVersion != 2 || m.MediaType != v1.MediaTypeImageManifest {
		return fmt.Errorf("manifest %s: schemaVersion %d mediaType %q", md.Digest, m.SchemaVersion, m.MediaType)
	}
	r.a.Manifests[md.Digest] = m
	cb, err := r.blob(m.Config, v1.MediaTypeImageConfig)
	if err != nil {
		return err
	}
	var cfg v1.Image
	if err := strictJSON(cb, &cfg); err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" || cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config %s: os %q architecture %q rootfs %q with %d diff IDs for %d layers",
			m.Config.Digest, cfg.OS, cfg.Architecture, cfg.RootFS.Type, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	if md.Platform != nil && (md.Platform.OS != cfg.OS || md.Platform.Architecture != cfg.Architecture) {
		return fmt.Errorf("index entry %s: platform %s/%s, config says %s/%s", md.Digest, md.Platform.OS, md.Platform.Architecture, cfg.OS, cfg.Architecture)
	}
	r.a.Configs[m.Config.Digest] = cfg
	for i, ld := range m.Layers {
		if err := r.readLayer(ld, cfg.RootFS.DiffIDs[i]); err != nil {
			return err
		}
	}
	return nil
}

// readLayer reads the layer ld describes: uncompressed, it must match
// diffID and keep every entry inside the root.
func (r *archiveReader) readLayer(ld v1.Descriptor, diffID digest.Digest) error {
	lb, err := r.blob(ld, v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayer)
	if err != nil {
		return err
	}
	raw := lb
	if ld.MediaType == v1.MediaTypeImageLayerGzip {
		zr, err := gzip.NewReader(bytes.NewReader(lb))
		if err != nil {
			return fmt.Errorf("layer %s: %w", ld.Digest, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("layer %s: %w", ld.Digest, err)
		}
	}
	if digest.FromBytes(raw) != diffID {
		return fmt.Errorf("layer %s: uncompressed digest %s, config's diff ID %s", ld.Digest, digest.FromBytes(raw), diffID)
	}
	hdrs, err := layerEntries(raw)
	if err != nil {
		return fmt.Errorf("layer %s: %w", ld.Digest, err)
	}
	r.a.Layers[ld.Digest] = hdrs
	return nil
}

// layerEntries lists a layer tar's headers, checking paths stay inside.
func layerEntries(raw []byte) ([]*tar.Header, error) {
	var out []*tar.Header
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(h.Name, "/") || strings.Contains("/"+path.Clean(h.Name)+"/", "/../") {
			return nil, fmt.Errorf("entry %q leaves the root", h.Name)
		}
		if h.Typeflag == tar.TypeLink && (strings.HasPrefix(h.Linkname, "/") || strings.HasPrefix(path.Clean(h.Linkname), "..")) {
			return nil, fmt.Errorf("hard link %q -> %q leaves the root", h.Name, h.Linkname)
		}
		out = append(out, h)
	}
}

// strictJSON decodes b into v, rejecting unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	if b == nil {
		return fmt.Errorf("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
