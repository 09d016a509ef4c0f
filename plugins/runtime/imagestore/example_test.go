package imagestore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
)

// A runtime opens the store once, imports archives (here one written by
// `make images`), and for each container resolves the image and gets the
// shared root filesystem to overlay.
func Example() {
	ctx := context.Background()
	store, err := imagestore.Open("/var/lib/kubelab/runtime/images")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Import(ctx, "_out/images/busybox.tar"); err != nil {
		log.Fatal(err)
	}
	img, err := store.Get("kubelab.local/busybox:1.0")
	if errors.Is(err, spec.ErrNotFound) {
		log.Fatal(err) // image "…" not found locally (import it with `kubelab runtime import`)
	}
	rootfs, err := store.Unpacked(ctx, img.ID) // read-only: mount it as an overlay's lowerdir
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.ID, img.Config.Cmd, rootfs)
}
