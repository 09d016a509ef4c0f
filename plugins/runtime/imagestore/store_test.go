package imagestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kubelab/kubelab/spec"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func named(name string) map[string]string {
	return map[string]string{v1.AnnotationRefName: name}
}

var helloLayers = [][]entry{{dir("bin/"), file("bin/hello", "#!hello\n"), symlink("bin/hi", "hello")}}

func TestImportArchiveAndDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*layoutWriter) string
	}{
		{"archive", (*layoutWriter).writeTar},
		{"directory", (*layoutWriter).writeDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			l := newLayout(t)
			m := l.add(testImage{annotations: named("hello:v1"), layers: helloLayers, gzip: true,
				config: v1.ImageConfig{Entrypoint: []string{"/bin/hello"}, Cmd: []string{"x"}, Env: []string{"A=b"}, WorkingDir: "/w", User: "1000"}})
			imgs, err := s.Import(context.Background(), tc.write(l))
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != 1 {
				t.Fatalf("Import returned %d images, want 1", len(imgs))
			}
			img := imgs[0]
			if !slices.Equal(img.RepoTags, []string{"docker.io/library/hello:v1"}) {
				t.Errorf("RepoTags = %v", img.RepoTags)
			}
			if want := []string{"docker.io/library/hello@" + m.Digest.String()}; !slices.Equal(img.RepoDigests, want) {
				t.Errorf("RepoDigests = %v, want %v", img.RepoDigests, want)
			}
			if img.ManifestDigest != m.Digest || !strings.HasPrefix(img.ID, "sha256:") || img.Size <= m.Size {
				t.Errorf("image = %+v", img)
			}
			if !slices.Equal(img.Config.Entrypoint, []string{"/bin/hello"}) || img.Config.WorkingDir != "/w" || img.Config.User != "1000" ||
				!slices.Equal(img.Config.Env, []string{"A=b"}) || !slices.Equal(img.Config.Cmd, []string{"x"}) {
				t.Errorf("config = %+v", img.Config)
			}
			for _, ref := range []string{"hello:v1", "docker.io/library/hello:v1", img.ID, strings.TrimPrefix(img.ID, "sha256:"),
				img.ID[:19], strings.TrimPrefix(img.ID, "sha256:")[:12], m.Digest.String(), "hello@" + m.Digest.String()} {
				got, err := s.Get(ref)
				if err != nil || got.ID != img.ID {
					t.Errorf("Get(%q) = %v, %v", ref, got.ID, err)
				}
			}
			list, err := s.List()
			if err != nil || len(list) != 1 || list[0].ID != img.ID {
				t.Errorf("List() = %v, %v", list, err)
			}
			// Another Store on the same root sees it.
			s2, err := Open(s.Root())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s2.Get("hello:v1"); err != nil {
				t.Errorf("second Store: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(entries) != 0 {
				t.Errorf("tmp/ not empty after import: %v", entries)
			}
		})
	}
}

func TestGetNotFound(t *testing.T) {
	s := openStore(t)
	for _, ref := range []string{"nothere", "nothere:v2", "sha256:abcd", "abcd", ""} {
		_, err := s.Get(ref)
		if !errors.Is(err, spec.ErrNotFound) || !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want ErrNotFound", ref, err)
		}
		if err == nil || !strings.Contains(err.Error(), "not found locally") || !strings.Contains(err.Error(), "kubelab runtime import") {
			t.Errorf("Get(%q) err = %v, want the import hint", ref, err)
		}
	}
	if _, err := s.Unpacked(context.Background(), "nothere"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Unpacked(unknown) = %v", err)
	}
	if err := s.Remove("nothere"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Remove(unknown) = %v", err)
	}
}

func TestContainerdExportNames(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	l.add(testImage{annotations: map[string]string{
		AnnotationContainerdImageName: "registry.k8s.io/pause:3.10",
		v1.AnnotationRefName:          "3.10",
	}, layers: helloLayers})
	imgs, err := s.Import(context.Background(), l.writeTar())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(imgs[0].RepoTags, []string{"registry.k8s.io/pause:3.10"}) {
		t.Errorf("RepoTags = %v", imgs[0].RepoTags)
	}
}

func TestImportMovesNameAndMerges(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	l1 := newLayout(t)
	l1.add(testImage{annotations: named("app"), layers: helloLayers})
	old, err := s.Import(ctx, l1.writeTar())
	if err != nil {
		t.Fatal(err)
	}
	l2 := newLayout(t)
	l2.add(testImage{annotations: named("app"), layers: [][]entry{{file("v2", "2")}}})
	l2.add(testImage{annotations: named("app:stable"), layers: [][]entry{{file("v2", "2")}}})
	nw, err := s.Import(ctx, l2.writeDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(nw) != 1 || !slices.Equal(nw[0].RepoTags, []string{"docker.io/library/app:latest", "docker.io/library/app:stable"}) {
		t.Fatalf("second import = %+v", nw)
	}
	got, err := s.Get("app")
	if err != nil || got.ID != nw[0].ID {
		t.Errorf("Get(app) = %v, %v; want the new image", got.ID, err)
	}
	o, err := s.Get(old[0].ID)
	if err != nil || len(o.RepoTags) != 0 {
		t.Errorf("old image = %+v, %v; want it kept without names", o, err)
	}
}

func TestImportRejectsBadLayouts(t *testing.T) {
	ctx := context.Background()
	good := func() *layoutWriter {
		l := newLayout(t)
		l.add(testImage{annotations: named("x"), layers: helloLayers})
		return l
	}
	for _, tc := range []struct {
		name   string
		mangle func(t *testing.T, l *layoutWriter) string
	}{
		{"corrupt blob", func(t *testing.T, l *layoutWriter) string {
			for d, b := range l.blobs {
				if len(b) > 1000 { // the layer
					b = append([]byte{}, b...)
					b[600] ^= 0xff
					l.blobs[d] = b
				}
			}
			return l.writeDir()
		}},
		{"corrupt blob in archive", func(t *testing.T, l *layoutWriter) string {
			for d, b := range l.blobs {
				if len(b) > 1000 {
					b = append([]byte{}, b...)
					b[600] ^= 0xff
					l.blobs[d] = b
				}
			}
			return l.writeTar()
		}},
		{"missing blob", func(t *testing.T, l *layoutWriter) string {
			for d, b := range l.blobs {
				if len(b) > 1000 {
					delete(l.blobs, d)
				}
			}
			return l.writeTar()
		}},
		{"no oci-layout", func(t *testing.T, l *layoutWriter) string {
			dir := l.writeDir()
			os.Remove(filepath.Join(dir, v1.ImageLayoutFile))
			return dir
		}},
		{"not a tar", func(t *testing.T, l *layoutWriter) string {
			p := filepath.Join(t.TempDir(), "x.tar")
			os.WriteFile(p, []byte("hello, this is not a tar archive at all, not even close, really"), 0o644)
			return p
		}},
		{"traversal in archive", func(t *testing.T, l *layoutWriter) string {
			p := filepath.Join(t.TempDir(), "x.tar")
			os.WriteFile(p, layerTar(t, []entry{file("../../evil", "x")}), 0o644)
			return p
		}},
		{"wrong size in descriptor", func(t *testing.T, l *layoutWriter) string {
			l.index.Manifests[0].Size++
			return l.writeDir()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			if imgs, err := s.Import(ctx, tc.mangle(t, good())); err == nil {
				t.Fatalf("Import succeeded: %+v", imgs)
			}
			if list, _ := s.List(); len(list) != 0 {
				t.Errorf("images visible after a failed import: %v", list)
			}
			if blobs, _ := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256")); len(blobs) != 0 {
				t.Errorf("blobs left after a failed import: %d", len(blobs))
			}
			if entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(entries) != 0 {
				t.Errorf("tmp/ not empty after a failed import: %v", entries)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	l := newLayout(t)
	shared := []entry{file("shared", "s")}
	l.add(testImage{annotations: named("a"), layers: [][]entry{shared, {file("a", "a")}}})
	l.add(testImage{annotations: named("b"), layers: [][]entry{shared, {file("b", "b")}}})
	if _, err := s.Import(ctx, l.writeTar()); err != nil {
		t.Fatal(err)
	}
	dir, err := s.Unpacked(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rootfs %s still there after Remove: %v", dir, err)
	}
	// b still unpacks: its blobs, shared one included, were kept.
	bdir, err := s.Unpacked(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"shared", "b"} {
		if _, err := os.Stat(filepath.Join(bdir, f)); err != nil {
			t.Error(err)
		}
	}
	if err := s.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if blobs, _ := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("%d blobs left after removing every image", len(blobs))
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	for i := range 40 {
		l.add(testImage{layers: [][]entry{{file("f", strings.Repeat("x", i))}}})
	}
	imgs, err := s.Import(context.Background(), l.writeTar())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 40 {
		t.Fatalf("imported %d unnamed images, want 40", len(imgs))
	}
	// With 40 images (80 digests), some one-hex-digit prefix is shared.
	amb := false
	for _, c := range "0123456789abcdef" {
		if _, err := s.Get(string(c)); errors.Is(err, ErrAmbiguous) {
			amb = true
		}
	}
	if !amb {
		t.Error("no one-character prefix was ambiguous")
	}
}

func TestConcurrentImportsAndUnpacks(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	l := newLayout(t)
	l.add(testImage{annotations: named("c"), layers: helloLayers})
	p := l.writeTar()
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	dirs := make([]string, 16)
	errs := make([]error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			if _, err := st.Import(ctx, p); err != nil {
				errs[i] = err
				return
			}
			dirs[i], errs[i] = st.Unpacked(ctx, "c")
		}()
	}
	wg.Wait()
	for i := range 16 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if dirs[i] != dirs[0] {
			t.Errorf("Unpacked dirs differ: %q vs %q", dirs[i], dirs[0])
		}
	}
	if list, _ := s.List(); len(list) != 1 {
		t.Errorf("List() = %d images, want 1", len(list))
	}
}

func TestOpenCleansInterruptedWork(t *testing.T) {
	s := openStore(t)
	// An import that crashed: a staging dir whose lock file no one holds,
	// and one without any lock file.
	for _, p := range []string{"import-1", "rootfs-2"} {
		os.MkdirAll(filepath.Join(s.Root(), "tmp", p, "blobs"), 0o700)
	}
	os.WriteFile(filepath.Join(s.Root(), "tmp", "import-1.lock"), nil, 0o600)
	// A live one, held by this process.
	live, err := s.newTmpDir("import-")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := Open(s.Root()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{filepath.Base(live.path), filepath.Base(live.path) + ".lock"}
	if !slices.Equal(names, want) {
		t.Errorf("tmp/ after Open = %v, want %v", names, want)
	}
}

func TestImportMultiPlatformIndex(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	host := l.manifest(testImage{layers: [][]entry{{file("host", "h")}}})
	host.Platform = &v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	other := l.manifest(testImage{layers: [][]entry{{file("other", "o")}}})
	other.Platform = &v1.Platform{OS: "linux", Architecture: "s390x"}
	attest := l.manifest(testImage{layers: [][]entry{{file("attestation", "a")}}})
	attest.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	idx := l.json(v1.MediaTypeImageIndex, v1.Index{Versioned: specsVersioned(), MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{other, attest, host}})
	idx.Annotations = named("multi:v2")
	l.index.Manifests = append(l.index.Manifests, idx)
	imgs, err := s.Import(context.Background(), l.writeTar())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ManifestDigest != host.Digest || !slices.Equal(imgs[0].RepoTags, []string{"docker.io/library/multi:v2"}) {
		t.Fatalf("imported %+v, want the host platform's manifest %s", imgs, host.Digest)
	}
	if want := []string{"docker.io/library/multi@" + idx.Digest.String()}; !slices.Equal(imgs[0].RepoDigests, want) {
		t.Errorf("RepoDigests = %v, want the index's digest %v", imgs[0].RepoDigests, want)
	}
	for _, ref := range []string{"multi@" + idx.Digest.String(), idx.Digest.String(), host.Digest.String()} {
		if got, err := s.Get(ref); err != nil || got.ID != imgs[0].ID {
			t.Errorf("Get(%q) = %v, %v", ref, got.ID, err)
		}
	}
	dir, err := s.Unpacked(context.Background(), "multi:v2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "host")); err != nil {
		t.Error(err)
	}
	// Only the host manifest's blobs were kept.
	if blobs, _ := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256")); len(blobs) != 3 {
		t.Errorf("%d blobs stored, want 3 (manifest, config, layer)", len(blobs))
	}
}

func TestImagesAreValues(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	l.add(testImage{annotations: named("v"), layers: helloLayers,
		config: v1.ImageConfig{Env: []string{"A=1"}, Labels: map[string]string{"l": "1"}, Entrypoint: []string{"/e"}}})
	if _, err := s.Import(context.Background(), l.writeTar()); err != nil {
		t.Fatal(err)
	}
	img, err := s.Get("v")
	if err != nil {
		t.Fatal(err)
	}
	img.Config.Env[0] = "changed"
	img.Config.Labels["l"] = "changed"
	img.Config.Entrypoint[0] = "changed"
	img.RepoTags[0] = "changed"
	img.Layers[0].Size = -1
	again, _ := s.Get("v")
	if again.Config.Env[0] != "A=1" || again.Config.Labels["l"] != "1" || again.Config.Entrypoint[0] != "/e" ||
		again.RepoTags[0] != "docker.io/library/v:latest" || again.Layers[0].Size <= 0 {
		t.Errorf("changing a returned Image changed the store: %+v", again)
	}
}

func TestCancelledImportLeavesNothing(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	l.add(testImage{annotations: named("cancelled"), layers: helloLayers})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, p := range []string{l.writeTar(), l.writeDir()} {
		if _, err := s.Import(ctx, p); !errors.Is(err, context.Canceled) {
			t.Errorf("Import with a cancelled context: %v", err)
		}
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("images after a cancelled import: %v", list)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ not empty: %v", entries)
	}
}

func TestImportRefusesOtherPlatforms(t *testing.T) {
	s := openStore(t)
	l := newLayout(t)
	m := l.manifest(testImage{layers: helloLayers})
	var man v1.Manifest
	mustUnmarshal(t, l.blobs[m.Digest], &man)
	var cfg v1.Image
	mustUnmarshal(t, l.blobs[man.Config.Digest], &cfg)
	cfg.Architecture = "s390x"
	if runtime.GOARCH == "s390x" {
		cfg.Architecture = "arm64"
	}
	man.Config = l.json(v1.MediaTypeImageConfig, cfg)
	md := l.json(v1.MediaTypeImageManifest, man)
	md.Annotations = named("foreign")
	l.index.Manifests = []v1.Descriptor{md}
	if _, err := s.Import(context.Background(), l.writeTar()); !errors.Is(err, spec.ErrInvalid) || !strings.Contains(err.Error(), cfg.Architecture) {
		t.Errorf("Import of a %s image: %v", cfg.Architecture, err)
	}
}

func TestImageUser(t *testing.T) {
	for _, tc := range []struct {
		user  string
		uid   int64
		isUID bool
		name  string
	}{
		{"", 0, false, ""},
		{"0", 0, true, ""},
		{"1000", 1000, true, ""},
		{"1000:1000", 1000, true, ""},
		{"nobody", 0, false, "nobody"},
		{"nobody:nogroup", 0, false, "nobody"},
		{":100", 0, false, ""},
		{"-1", 0, false, "-1"},
	} {
		uid, isUID, name := Image{Config: v1.ImageConfig{User: tc.user}}.User()
		if uid != tc.uid || isUID != tc.isUID || name != tc.name {
			t.Errorf("User() of %q = %d, %v, %q; want %d, %v, %q", tc.user, uid, isUID, name, tc.uid, tc.isUID, tc.name)
		}
	}
}
