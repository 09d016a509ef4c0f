package process

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
)

func criImage(img imagestore.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Size: uint64(img.Size),
		Spec: &runtimeapi.ImageSpec{Image: img.ID},
	}
	if u := img.Config.User; u != "" {
		out.Username = u
	}
	return out
}

// ListImages implements CRI.
func (r *Runtime) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	imgs, err := r.images.List()
	if err != nil {
		return nil, errInternal("list images: %v", err)
	}
	var out []*runtimeapi.Image
	for _, img := range imgs {
		if ref := filter.GetImage().GetImage(); ref != "" {
			want, err := r.images.Get(ref)
			if err != nil || want.ID != img.ID {
				continue
			}
		}
		out = append(out, criImage(img))
	}
	return out, nil
}

// ImageStatus implements CRI: an image that is not present is a nil Image,
// not an error.
func (r *Runtime) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	img, err := r.images.Get(image.GetImage())
	if errors.Is(err, spec.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, errInternal("image %q: %v", image.GetImage(), err)
	}
	return &runtimeapi.ImageStatusResponse{Image: criImage(img)}, nil
}

// PullImage implements CRI without a registry: an image already in the
// store is "pulled" (its ID is returned); any other is NotFound.
func (r *Runtime) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	img, err := r.images.Get(image.GetImage())
	if errors.Is(err, spec.ErrNotFound) {
		return "", status.Errorf(codes.NotFound, "image %q not found locally: the process runtime pulls from no registry; import the image archive first (kubelab runtime import FILE)", image.GetImage())
	}
	if err != nil {
		return "", errInternal("image %q: %v", image.GetImage(), err)
	}
	return img.ID, nil
}

// RemoveImage implements CRI: an image a container was created from is
// kept (FailedPrecondition); removing an absent image succeeds.
func (r *Runtime) RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error {
	img, err := r.images.Get(image.GetImage())
	if errors.Is(err, spec.ErrNotFound) {
		return nil
	}
	if err != nil {
		return errInternal("image %q: %v", image.GetImage(), err)
	}
	r.mu.Lock()
	for _, c := range r.containers {
		if c.ImageID == img.ID {
			r.mu.Unlock()
			return status.Errorf(codes.FailedPrecondition, "image %q is used by container %q", image.GetImage(), c.ID)
		}
	}
	r.mu.Unlock()
	if err := r.images.Remove(img.ID); err != nil && !errors.Is(err, spec.ErrNotFound) {
		return errInternal("remove image %q: %v", image.GetImage(), err)
	}
	return nil
}

// ImageFsInfo implements CRI: the bytes and inodes under the image store's
// directory (when the store tells its Root), or under the runtime's root.
// It walks the tree on every call.
func (r *Runtime) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	dir := r.root
	if rs, ok := r.images.(interface{ Root() string }); ok {
		dir = rs.Root()
	}
	var bytes, inodes uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		inodes++
		if fi, err := d.Info(); err == nil && d.Type().IsRegular() {
			bytes += uint64(fi.Size())
		}
		return nil
	})
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}}}, nil
}

// unimplemented is the error of the optional CRI methods the process
// runtime does not offer.
func unimplemented(method string) error {
	return status.Errorf(codes.Unimplemented, "%s is not implemented by the %s runtime", method, Name)
}
