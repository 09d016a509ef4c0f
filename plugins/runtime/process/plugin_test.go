package process

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/ociimage"
)

// TestPluginWithImportedImage goes through the registered factory and the
// real image store: a busybox OCI archive is imported, unpacked and run.
func TestPluginWithImportedImage(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := ociimage.BusyboxImage(ociimage.DefaultBusybox)
	if err != nil {
		t.Skip(err)
	}
	img, err := ociimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := img.WriteArchiveFile(archive); err != nil {
		t.Fatal(err)
	}
	st, err := imagestore.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(ctx, archive); err != nil {
		t.Fatal(err)
	}

	if _, _, err := Plugin().New(ctx, spec.RuntimeConfig{RootDir: root, Options: map[string]string{"colour": "blue"}}); err == nil {
		t.Errorf("an unknown option was accepted")
	}
	rt, closer, err := Plugin().New(ctx, spec.RuntimeConfig{RootDir: root, Options: map[string]string{
		OptionPodCIDR: "10.199.77.0/24", OptionInstance: "plugintest",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closer() })
	r := rt.(*Runtime)
	t.Cleanup(func() { removeEverything(t, r) })

	ref, err := r.PullImage(ctx, imageSpec(ociimage.BusyboxImageName), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, sbCfg := runSandbox(t, r, "plugin")
	cfg := containerConfig("bb", "sh", "-c", "echo hello from $(readlink /bin/sh); ls /proc/1/exe >/dev/null && echo ok")
	cfg.Image.Image = ref
	id := startContainer(t, r, sb, sbCfg, cfg)
	if st := waitExit(t, r, id); st.ExitCode != 0 {
		t.Fatalf("exit %d %s: %s", st.ExitCode, st.Message, readLog(t, sbCfg, cfg))
	}
	out, _ := logEntries(t, readLog(t, sbCfg, cfg))
	if strings.Join(out, "|") != "hello from busybox|ok" {
		t.Errorf("output %q", out)
	}
	fsi, err := r.ImageFsInfo(ctx)
	if err != nil || len(fsi.ImageFilesystems) != 1 || fsi.ImageFilesystems[0].UsedBytes.GetValue() < 500_000 {
		t.Errorf("ImageFsInfo = %v, %v; want the store's bytes (busybox is > 500 kB)", fsi, err)
	}
	imgs, err := r.ListImages(ctx, nil)
	if err != nil || len(imgs) != 1 || imgs[0].Id != ref {
		t.Errorf("ListImages = %v, %v", imgs, err)
	}
}

func imageSpec(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }
