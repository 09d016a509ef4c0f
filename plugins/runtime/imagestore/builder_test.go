package imagestore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// entry is one tar entry of a test layer.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) entry { return entry{name: name, typ: tar.TypeLink, link: target} }

// layerTar returns an uncompressed tar of entries.
func layerTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, ModTime: mtime, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage describes an image for testLayout.
type testImage struct {
	annotations map[string]string
	layers      [][]entry
	gzip        bool
	config      v1.ImageConfig
}

// layoutWriter accumulates blobs and index entries of an OCI layout.
type layoutWriter struct {
	t     testing.TB
	blobs map[digest.Digest][]byte
	index v1.Index
}

func newLayout(t testing.TB) *layoutWriter {
	return &layoutWriter{t: t, blobs: map[digest.Digest][]byte{}, index: v1.Index{Versioned: specsVersioned(), MediaType: v1.MediaTypeImageIndex}}
}

func (l *layoutWriter) blob(mt string, b []byte) v1.Descriptor {
	d := digest.FromBytes(b)
	l.blobs[d] = b
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

func (l *layoutWriter) json(mt string, v any) v1.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mt, b)
}

// manifest adds img's blobs and returns its manifest descriptor.
func (l *layoutWriter) manifest(img testImage) v1.Descriptor {
	cfg := v1.Image{Platform: v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}, Config: img.config, RootFS: v1.RootFS{Type: "layers"}}
	var layers []v1.Descriptor
	for _, entries := range img.layers {
		raw := layerTar(l.t, entries)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		if img.gzip {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(raw)
			zw.Close()
			layers = append(layers, l.blob(v1.MediaTypeImageLayerGzip, z.Bytes()))
		} else {
			layers = append(layers, l.blob(v1.MediaTypeImageLayer, raw))
		}
	}
	c := l.json(v1.MediaTypeImageConfig, cfg)
	return l.json(v1.MediaTypeImageManifest, v1.Manifest{Versioned: specsVersioned(), MediaType: v1.MediaTypeImageManifest, Config: c, Layers: layers})
}

// add adds img to the layout's index.
func (l *layoutWriter) add(img testImage) v1.Descriptor {
	m := l.manifest(img)
	m.Annotations = img.annotations
	l.index.Manifests = append(l.index.Manifests, m)
	return m
}

// files returns the layout as path → content.
func (l *layoutWriter) files() map[string][]byte {
	out := map[string][]byte{}
	b, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	out[v1.ImageLayoutFile] = b
	b, _ = json.Marshal(l.index)
	out[v1.ImageIndexFile] = b
	for d, b := range l.blobs {
		out["blobs/sha256/"+d.Encoded()] = b
	}
	return out
}

// writeDir writes the layout as a directory and returns its path.
func (l *layoutWriter) writeDir() string {
	dir := l.t.TempDir()
	for p, b := range l.files() {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			l.t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	return dir
}

// writeTar writes the layout as a tar archive and returns its path.
func (l *layoutWriter) writeTar() string {
	files := l.files()
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	var entries []entry
	for _, p := range names {
		entries = append(entries, file(p, string(files[p])))
	}
	p := filepath.Join(l.t.TempDir(), "image.tar")
	if err := os.WriteFile(p, layerTar(l.t, entries), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
}

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
