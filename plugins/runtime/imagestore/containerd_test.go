package imagestore

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// testdata/ctr-export.tar was written by real containerd (Debian's 1.6.20):
// a one-layer image built by spec/ociimage, imported with `ctr images
// import`, tagged a second time and exported with
//
//	ctr images export ctr-export.tar kubelab.local/tiny:1.0 docker.io/library/tiny:latest
//
// so it has containerd's annotations (the full name in
// io.containerd.image.name, only the tag in ref.name), no index mediaType,
// and Docker's manifest.json next to the OCI layout.
func TestImportContainerdExport(t *testing.T) {
	s := openStore(t)
	imgs, err := s.Import(context.Background(), filepath.Join("testdata", "ctr-export.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 {
		t.Fatalf("imported %d images, want 1 (two names for one manifest)", len(imgs))
	}
	img := imgs[0]
	if want := []string{"docker.io/library/tiny:latest", "kubelab.local/tiny:1.0"}; !slices.Equal(img.RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", img.RepoTags, want)
	}
	if want := []string{"docker.io/library/tiny@" + img.ManifestDigest.String(), "kubelab.local/tiny@" + img.ManifestDigest.String()}; !slices.Equal(img.RepoDigests, want) {
		t.Errorf("RepoDigests = %v, want %v", img.RepoDigests, want)
	}
	if !slices.Equal(img.Config.Entrypoint, []string{"/bin/hi"}) || !slices.Equal(img.Config.Env, []string{"A=1"}) {
		t.Errorf("config = %+v", img.Config)
	}
	if got, err := s.Get("tiny"); err != nil || got.ID != img.ID {
		t.Errorf("Get(tiny) = %v, %v", got.ID, err)
	}
	dir, err := s.Unpacked(context.Background(), "kubelab.local/tiny:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bin/hi")); err != nil || string(b) != "hello from containerd\n" {
		t.Errorf("/bin/hi -> %q, %v", b, err)
	}
}
