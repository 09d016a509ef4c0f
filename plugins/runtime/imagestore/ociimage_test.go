package imagestore_test

// The round trip of kubelab's test images: built by spec/ociimage, imported
// and unpacked by this store.

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
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

// chrootRun runs argv chrooted into dir (root only) and returns its
// combined output and exit code.
func chrootRun(t *testing.T, dir string, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin:/usr/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return string(out), 0
}

func TestTestImagesRoundTrip(t *testing.T) {
	needBusybox(t)
	wl := buildWorkload(t)
	out := t.TempDir()
	built, err := ociimage.BuildTestImages(out, wl, "")
	if err != nil {
		t.Fatal(err)
	}
	store, err := imagestore.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	entry := map[string]string{
		ociimage.PauseImageName:     "/pause",
		ociimage.WorkloadImageName:  "/workload",
		ociimage.WebserverImageName: "/workload",
		ociimage.BusyboxImageName:   "/bin/sh",
	}
	if len(built) != len(entry) {
		t.Fatalf("built %d images, want %d", len(built), len(entry))
	}
	dirs := map[string]string{}
	for _, b := range built {
		if _, err := ociimage.ReadArchive(b.Path); err != nil {
			t.Fatalf("%s: %v", b.Path, err)
		}
		imgs, err := store.Import(ctx, b.Path)
		if err != nil {
			t.Fatalf("import %s: %v", b.Path, err)
		}
		if len(imgs) != 1 || !slices.Equal(imgs[0].RepoTags, []string{b.Name}) || imgs[0].ID != b.Image.ID() {
			t.Fatalf("imported %+v", imgs)
		}
		dir, err := store.Unpacked(ctx, b.Name)
		if err != nil {
			t.Fatal(err)
		}
		dirs[b.Name] = dir
		fi, err := os.Stat(filepath.Join(dir, entry[b.Name]))
		if err != nil {
			t.Fatalf("%s: entrypoint: %v", b.Name, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("%s: %s mode %v, want an executable file", b.Name, entry[b.Name], fi.Mode())
		}
		if img, _ := store.Get(b.Name); b.Name != ociimage.BusyboxImageName && img.Config.Entrypoint[0] != entry[b.Name] {
			t.Errorf("%s: entrypoint %v", b.Name, img.Config.Entrypoint)
		}
	}
	// Rebuilding gives the same bytes.
	again, err := ociimage.BuildTestImages(t.TempDir(), wl, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range built {
		a, _ := os.ReadFile(built[i].Path)
		b, _ := os.ReadFile(again[i].Path)
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", built[i].Name)
		}
	}
	if os.Geteuid() != 0 {
		t.Log("not root: not running the images' entrypoints")
		return
	}
	if out, code := chrootRun(t, dirs[ociimage.BusyboxImageName], "/bin/sh", "-c", "echo hello; id -u; ls /bin/sh; cat /etc/passwd | head -1; exit 4"); code != 4 ||
		!strings.HasPrefix(out, "hello\n0\n/bin/sh\nroot:") {
		t.Errorf("busybox sh: %q, exit %d", out, code)
	}
	if out, code := chrootRun(t, dirs[ociimage.WorkloadImageName], "/workload", "exit", "--code", "3"); code != 3 {
		t.Errorf("workload exit --code 3: %q, exit %d", out, code)
	}
	// The pause image's /pause pauses until SIGTERM and exits 0.
	cmd := exec.Command("/pause")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dirs[ociimage.PauseImageName]}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("pause after SIGTERM: %v", err)
	}
}

func TestLayoutDirectoryImports(t *testing.T) {
	img, err := ociimage.Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := img.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	store, err := imagestore.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := store.Import(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ID != img.ID() || !slices.Equal(imgs[0].Config.Entrypoint, []string{"/bin/tool"}) {
		t.Errorf("imported %+v", imgs)
	}
	root, err := store.Unpacked(context.Background(), "kubelab.local/test:1")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || fi.Mode()&fs.ModeSticky == 0 {
		t.Errorf("/tmp = %v, %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(root, "bin/alias")); err != nil || l != "tool" {
		t.Errorf("/bin/alias -> %q, %v", l, err)
	}
}
