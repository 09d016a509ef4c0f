package ociimage_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kubelab/kubelab/spec/ociimage"
)

// buildWorkload builds tools/workload statically, once per test binary.
func buildWorkload(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "workload")
	if err := ociimage.BuildWorkload(context.Background(), out); errors.Is(err, exec.ErrNotFound) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	return out
}

func needBusybox(t *testing.T) {
	t.Helper()
	if err := ociimage.CheckStatic(ociimage.DefaultBusybox); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
}

func testSpec() ociimage.Spec {
	return ociimage.Spec{
		Names: []string{"kubelab.local/test:1"},
		Files: []ociimage.File{
			{Path: "/bin/tool", Mode: 0o755, Content: []byte("#!/bin/true\n")},
			{Path: "/bin/alias", Mode: fs.ModeSymlink, Linkname: "tool"},
			{Path: "/etc/conf", Mode: 0o600, Content: []byte("x"), UID: 1000, GID: 1000},
			{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		},
		Config: v1.ImageConfig{Entrypoint: []string{"/bin/tool"}},
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	var outs [2]bytes.Buffer
	for i := range outs {
		img, err := ociimage.Build(testSpec())
		if err != nil {
			t.Fatal(err)
		}
		if err := img.WriteArchive(&outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0].Bytes(), outs[1].Bytes()) {
		t.Fatal("two builds of one spec differ")
	}
}

func TestArchiveIsStrictlyValid(t *testing.T) {
	img, err := ociimage.Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "test.tar")
	if err := img.WriteArchiveFile(p); err != nil {
		t.Fatal(err)
	}
	a, err := ociimage.ReadArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Index.Manifests) != 1 || a.Index.Manifests[0].Annotations[v1.AnnotationRefName] != "kubelab.local/test:1" {
		t.Errorf("index = %+v", a.Index)
	}
	m := a.Manifests[img.Manifest.Digest]
	if m.Config.Digest != img.Config.Digest || len(m.Layers) != 1 || m.Layers[0].MediaType != v1.MediaTypeImageLayerGzip {
		t.Errorf("manifest = %+v", m)
	}
	cfg := a.Configs[img.Config.Digest]
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Equal(ociimage.Epoch) {
		t.Errorf("config = %+v", cfg)
	}
	var names []string
	for _, h := range a.Layers[img.Layer.Digest] {
		names = append(names, h.Name)
		if !h.ModTime.Equal(ociimage.Epoch) {
			t.Errorf("%s mtime %v", h.Name, h.ModTime)
		}
	}
	want := []string{"bin/", "bin/alias", "bin/tool", "etc/", "etc/conf", "tmp/"}
	if !slices.Equal(names, want) {
		t.Errorf("layer entries = %v, want %v (parents first, sorted)", names, want)
	}
}

func TestReadArchiveRejectsTampering(t *testing.T) {
	img, err := ociimage.Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := img.WriteArchive(&buf); err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the layer blob's content (after its header).
	b := buf.Bytes()
	idx := bytes.LastIndex(b, []byte("blobs/sha256/"+img.Layer.Digest.Encoded()))
	off := (idx/512+1)*512 + 20
	b[off] ^= 0xff
	p := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(p, b, 0o644)
	if _, err := ociimage.ReadArchive(p); err == nil {
		t.Error("ReadArchive accepted a corrupted blob")
	}
}

func TestSpecErrors(t *testing.T) {
	for name, s := range map[string]ociimage.Spec{
		"no name":       {Files: testSpec().Files},
		"relative path": {Names: []string{"a"}, Files: []ociimage.File{{Path: "bin/x", Mode: 0o755}}},
		"duplicate":     {Names: []string{"a"}, Files: []ociimage.File{{Path: "/x"}, {Path: "/x"}}},
		"file parent":   {Names: []string{"a"}, Files: []ociimage.File{{Path: "/x"}, {Path: "/x/y"}}},
		"dangling link": {Names: []string{"a"}, Files: []ociimage.File{{Path: "/x", Mode: fs.ModeSymlink}}},
	} {
		if _, err := ociimage.Build(s); err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
	if err := ociimage.CheckStatic("/bin/ls"); err == nil {
		t.Error("CheckStatic(/bin/ls) accepted a dynamic binary")
	}
	if _, err := ociimage.BinaryImage("x", "/etc/passwd"); err == nil {
		t.Error("BinaryImage accepted a text file")
	}
}
