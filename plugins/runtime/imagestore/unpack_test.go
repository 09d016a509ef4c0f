package imagestore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// unpackLayers imports one image made of layers and returns its rootfs.
func unpackLayers(t *testing.T, gz bool, layers ...[]entry) (string, error) {
	t.Helper()
	s := openStore(t)
	l := newLayout(t)
	l.add(testImage{annotations: named("u"), layers: layers, gzip: gz})
	if _, err := s.Import(context.Background(), l.writeTar()); err != nil {
		t.Fatal(err)
	}
	return s.Unpacked(context.Background(), "u")
}

// tree lists every path under dir, relative, sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestUnpackWhiteoutsAndOverrides(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir, err := unpackLayers(t, gz,
			[]entry{dir("etc/"), file("etc/a", "1"), file("etc/b", "1"), dir("var/"), dir("var/lib/"), file("var/lib/x", "1"), file("var/keep", "k"),
				dir("opq/"), file("opq/old", "o"), dir("opq/sub/"), file("opq/sub/deep", "d"), file("f2d", "file")},
			[]entry{file("etc/.wh.a", ""), file("etc/b", "2"), file("var/.wh.lib", ""), dir("opq/"), file("opq/.wh..wh..opq", ""), file("opq/new", "n"),
				dir("f2d/"), file("f2d/inner", "i"), file(".wh.nothing-there", "")},
		)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"etc", "etc/b", "f2d", "f2d/inner", "opq", "opq/new", "var", "var/keep"}
		if got := tree(t, dir); !slices.Equal(got, want) {
			t.Errorf("gzip=%v tree = %v, want %v", gz, got, want)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "etc/b")); string(b) != "2" {
			t.Errorf("etc/b = %q, want the upper layer's", b)
		}
	}
}

func TestUnpackOpaqueWhiteoutAfterSiblings(t *testing.T) {
	// A layer that writes into a directory before marking it opaque keeps
	// what it wrote itself.
	dir, err := unpackLayers(t, false,
		[]entry{dir("d/"), file("d/old", "o")},
		[]entry{dir("d/"), file("d/new", "n"), file("d/.wh..wh..opq", "")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"d", "d/new"}) {
		t.Errorf("tree = %v", got)
	}
}

func TestUnpackLinksModesOwnership(t *testing.T) {
	suid := file("bin/su", "su")
	suid.mode = 0o4755
	owned := file("home/u/file", "x")
	owned.uid, owned.gid = 1234, 5678
	owned.mode = 0o600
	tmp := dir("tmp/")
	tmp.mode = 0o1777
	dev := entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666}
	fifo := entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600}
	dir, err := unpackLayers(t, true,
		[]entry{dir("bin/"), file("bin/busybox", "bb"), hardlink("bin/hard", "bin/busybox"), symlink("bin/sh", "/bin/busybox"), symlink("bin/rel", "busybox"),
			suid, dir("home/"), dir("home/u/"), owned, tmp, dir("dev/"), dev, dir("run/"), fifo},
	)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	a, _ := os.Stat(filepath.Join(dir, "bin/busybox"))
	b, _ := os.Stat(filepath.Join(dir, "bin/hard"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("bin/hard is not a hard link of bin/busybox")
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/su")); err != nil || fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/su mode = %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode = %v, %v", fi.Mode(), err)
	}
	fi, err := os.Stat(filepath.Join(dir, "home/u/file"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v", fi.Mode())
	}
	if fi, err := os.Lstat(filepath.Join(dir, "run/fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("run/fifo = %v, %v", fi, err)
	}
	if os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("owner = %d:%d, want 1234:5678", st.Uid, st.Gid)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "dev/null")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("dev/null = %v, %v (running as root: want a device node)", fi, err)
		}
	} else if _, err := os.Lstat(filepath.Join(dir, "dev/null")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev/null created without root: %v", err)
	}
}

func TestUnpackRejectsEscapes(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []struct {
		name   string
		layers [][]entry
	}{
		{"dotdot", [][]entry{{file("../escape", "x")}}},
		{"dotdot inside", [][]entry{{dir("a/"), file("a/../../escape", "x")}}},
		{"absolute", [][]entry{{file("/escape", "x")}}},
		{"through absolute symlink", [][]entry{{symlink("link", outside), file("link/escape", "x")}}},
		{"through relative symlink", [][]entry{{symlink("link", "../../../../../../.."+outside), file("link/escape", "x")}}},
		{"symlink in a lower layer", [][]entry{{symlink("link", outside)}, {file("link/escape", "x")}}},
		{"hard link out", [][]entry{{hardlink("h", "../../../../etc/passwd")}}},
		{"hard link through symlink", [][]entry{{symlink("l", outside), hardlink("h", "l/x")}}},
		{"whiteout through symlink", [][]entry{{symlink("l", outside)}, {file("l/.wh.victim", "")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(outside, "victim"), []byte("v"), 0o644)
			os.WriteFile(filepath.Join(outside, "x"), []byte("x"), 0o644)
			_, err := unpackLayers(t, false, tc.layers...)
			if err == nil {
				t.Error("Unpacked succeeded")
			}
			if _, err := os.Stat(filepath.Join(outside, "escape")); err == nil {
				t.Error("a file was written outside the rootfs")
			}
			if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
				t.Error("a file outside the rootfs was removed")
			}
		})
	}
}

func TestUnpackVerifiesDiffID(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	m := l.manifest(testImage{layers: helloLayers})
	// Point the config at a wrong diff ID: rebuild config + manifest.
	var man v1.Manifest
	mustUnmarshal(t, l.blobs[m.Digest], &man)
	var cfg v1.Image
	mustUnmarshal(t, l.blobs[man.Config.Digest], &cfg)
	cfg.RootFS.DiffIDs[0] = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	man.Config = l.json(v1.MediaTypeImageConfig, cfg)
	md := l.json(v1.MediaTypeImageManifest, man)
	md.Annotations = named("bad")
	l.index.Manifests = append(l.index.Manifests, md)
	if _, err := s.Import(context.Background(), l.writeTar()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unpacked(context.Background(), "bad"); err == nil {
		t.Fatal("Unpacked accepted a layer that does not match its diff ID")
	}
	if dirs, _ := os.ReadDir(filepath.Join(s.Root(), "rootfs")); len(dirs) > 1 {
		t.Errorf("rootfs/ holds %d entries after a failed unpack", len(dirs))
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ not empty after a failed unpack: %v", entries)
	}
}

func TestUnpackXattrsAndAUFSMetadata(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	os.WriteFile(probe, nil, 0o644)
	xattrs := unix.Setxattr(probe, "user.kubelab", []byte("1"), 0) == nil
	s := openStore(t)
	l := newLayout(t)
	m := l.manifest(testImage{layers: [][]entry{{file("plain", "p"), file(".wh..wh.plnk/123.456", "x"), dir(".wh..wh.plnk/")}}})
	// Rebuild the layer with a PAX xattr record on "plain".
	var man v1.Manifest
	mustUnmarshal(t, l.blobs[m.Digest], &man)
	raw := layerTarPAX(t, "tagged", "t", map[string]string{"SCHILY.xattr.user.kubelab": "yes"})
	var cfg v1.Image
	mustUnmarshal(t, l.blobs[man.Config.Digest], &cfg)
	man.Layers = append(man.Layers, l.blob(v1.MediaTypeImageLayer, raw))
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
	man.Config = l.json(v1.MediaTypeImageConfig, cfg)
	md := l.json(v1.MediaTypeImageManifest, man)
	md.Annotations = named("x")
	l.index.Manifests = []v1.Descriptor{md}
	if _, err := s.Import(context.Background(), l.writeTar()); err != nil {
		t.Fatal(err)
	}
	dir, err := s.Unpacked(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"plain", "tagged"}) {
		t.Errorf("tree = %v, want AUFS metadata skipped", got)
	}
	if !xattrs {
		t.Log("no user xattrs on this file system: not checking them")
		return
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(dir, "tagged"), "user.kubelab", buf)
	if err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user.kubelab = %q, %v", buf[:n], err)
	}
}

// layerTarPAX is a one-file layer whose entry carries PAX records.
func layerTarPAX(t *testing.T, name, body string, pax map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), PAXRecords: pax, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	return buf.Bytes()
}

func TestOpenCollectsGarbage(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	l := newLayout(t)
	l.add(testImage{annotations: named("keep"), layers: helloLayers})
	if _, err := s.Import(ctx, l.writeTar()); err != nil {
		t.Fatal(err)
	}
	keepDir, err := s.Unpacked(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	// What a crash after Remove wrote images.json leaves behind.
	orphanBlob := filepath.Join(s.Root(), "blobs", "sha256", strings.Repeat("ab", 32))
	orphanRootfs := filepath.Join(s.Root(), "rootfs", strings.Repeat("cd", 32))
	os.WriteFile(orphanBlob, []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(orphanRootfs, "bin"), 0o755)
	if _, err := Open(s.Root()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{orphanBlob, orphanRootfs} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(keepDir, "bin/hello")); err != nil {
		t.Errorf("a live image's rootfs was collected: %v", err)
	}
	if _, err := s.Unpacked(ctx, "keep"); err != nil {
		t.Error(err)
	}
}

func TestImportGzipArchive(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	l.add(testImage{annotations: named("gz"), layers: helloLayers})
	plain, err := os.ReadFile(l.writeTar())
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	p := filepath.Join(t.TempDir(), "image.tar.gz")
	os.WriteFile(p, z.Bytes(), 0o644)
	if _, err := s.Import(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("gz"); err != nil {
		t.Error(err)
	}
}

// FuzzUnpackStaysInside applies layers with arbitrary entry names and link
// targets and checks nothing appears outside the root filesystem.
func FuzzUnpackStaysInside(f *testing.F) {
	for _, s := range [][3]string{
		{"a/b", "../x", "a/b/c"}, {"l", "/", "l/escape"}, {"d/../../x", "", "y"}, {"s", "..", "s/s/escape"},
		{"./.wh..wh..opq", "", ".wh.etc"}, {"h", "../../h", "h2"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, link, target, name string) {
		for _, s := range []string{link, target, name} {
			if strings.ContainsRune(s, 0) || strings.HasSuffix(s, "/") || len(s) > 200 {
				return // not encodable as a tar entry name by archive/tar
			}
		}
		if link == "" || name == "" {
			return
		}
		outside := t.TempDir()
		guard := filepath.Join(outside, "guard")
		os.WriteFile(guard, []byte("g"), 0o644)
		s, err := Open(filepath.Join(outside, "store"))
		if err != nil {
			t.Fatal(err)
		}
		l := newLayout(t)
		l.add(testImage{annotations: named("f"), layers: [][]entry{
			{symlink(link, target), hardlink(link+"-hard", target)},
			{file(name, "x"), dir(name + "-dir/"), symlink(name+"-l", target), file(name+"-l/escape", "x")},
		}})
		p := filepath.Join(outside, "image.tar")
		os.WriteFile(p, layerTar(t, tarEntries(l.files())), 0o644)
		if _, err := s.Import(context.Background(), p); err != nil {
			return
		}
		_, _ = s.Unpacked(context.Background(), "f")
		entries, _ := os.ReadDir(outside)
		for _, e := range entries {
			if e.Name() != "store" && e.Name() != "guard" && e.Name() != "image.tar" {
				t.Fatalf("%q written outside the store", e.Name())
			}
		}
		if b, err := os.ReadFile(guard); err != nil || string(b) != "g" {
			t.Fatalf("guard file changed: %q, %v", b, err)
		}
	})
}

// tarEntries turns layout files into tar entries, sorted.
func tarEntries(files map[string][]byte) []entry {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []entry
	for _, n := range names {
		out = append(out, file(n, string(files[n])))
	}
	return out
}
