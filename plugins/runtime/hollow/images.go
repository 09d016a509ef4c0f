package hollow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
)

// resolveImageLocked finds an image by name (normalised), digest
// reference or ID.
func (r *Runtime) resolveImageLocked(ref string) (*image, bool) {
	if img, ok := r.images[ref]; ok {
		return img, true
	}
	if img, ok := r.images["sha256:"+ref]; ok {
		return img, true
	}
	if n, err := imagestore.NormalizeRef(ref); err == nil {
		if id, ok := r.tags[n]; ok {
			return r.images[id], true
		}
	}
	return nil, false
}

func (img *image) cri() *runtimeapi.Image {
	return &runtimeapi.Image{
		Id: img.id, RepoTags: append([]string(nil), img.repoTags...), RepoDigests: append([]string(nil), img.repoDigests...),
		Size: img.size, Spec: &runtimeapi.ImageSpec{Image: img.id},
	}
}

// ListImages implements CRI, sorted by ID.
func (r *Runtime) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*runtimeapi.Image
	if ref := filter.GetImage().GetImage(); ref != "" {
		if img, ok := r.resolveImageLocked(ref); ok {
			out = append(out, img.cri())
		}
		return out, nil
	}
	for _, img := range r.images {
		out = append(out, img.cri())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out, nil
}

// ImageStatus implements CRI: an image that was not pulled is a nil Image,
// not an error.
func (r *Runtime) ImageStatus(ctx context.Context, spec *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if img, ok := r.resolveImageLocked(spec.GetImage()); ok {
		return &runtimeapi.ImageStatusResponse{Image: img.cri()}, nil
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

// PullImage implements CRI: any well-formed reference is "pulled" at once.
// The image ID is derived from the normalised name, so every hollow node
// agrees on it.
func (r *Runtime) PullImage(ctx context.Context, spec *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	ref, err := imagestore.ParseReference(spec.GetImage())
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "%v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	name := ref.String()
	if id, ok := r.tags[name]; ok {
		return id, nil
	}
	sum := sha256.Sum256([]byte(name))
	id := "sha256:" + hex.EncodeToString(sum[:])
	img := &image{id: id, size: r.opts.ImageSize}
	if ref.Digest != "" {
		img.repoDigests = []string{name}
	} else {
		img.repoTags = []string{name}
		img.repoDigests = []string{ref.Repository + "@" + id}
	}
	r.images[id] = img
	r.tags[name] = id
	return id, nil
}

// RemoveImage implements CRI: the image and its names go; removing an
// image that is not there succeeds.
func (r *Runtime) RemoveImage(ctx context.Context, spec *runtimeapi.ImageSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	img, ok := r.resolveImageLocked(spec.GetImage())
	if !ok {
		return nil
	}
	for _, n := range append(append([]string(nil), img.repoTags...), img.repoDigests...) {
		if r.tags[n] == img.id {
			delete(r.tags, n)
		}
	}
	delete(r.images, img.id)
	return nil
}

// ImageFsInfo implements CRI: the pulled images' nominal sizes.
func (r *Runtime) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var used uint64
	for _, img := range r.images {
		used += img.size
	}
	fs := &runtimeapi.FilesystemUsage{
		Timestamp:  r.now(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: "/hollow/images"},
		UsedBytes:  &runtimeapi.UInt64Value{Value: used},
		InodesUsed: &runtimeapi.UInt64Value{Value: uint64(len(r.images))},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}, ContainerFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}
