package imagestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// catalogVersion is the format version of images.json.
const catalogVersion = 1

// catalog is the content of images.json: every image by ID.
type catalog struct {
	Version int                `json:"version"`
	Images  map[string]*record `json:"images"`
}

// record is one image in the catalog.
type record struct {
	ID string `json:"id"`
	// Names are normalised "repo:tag" names, sorted.
	Names []string `json:"names,omitempty"`
	// DigestRepos are repositories the image was imported under by digest
	// ("repo@sha256:…" names).
	DigestRepos []string      `json:"digestRepos,omitempty"`
	Manifest    v1.Descriptor `json:"manifest"`
	// Target is the digest index.json named: the manifest's, or for a
	// multi-platform image its index's. Repo digests use it, as registries
	// and containerd do.
	Target      digest.Digest   `json:"target,omitempty"`
	Config      v1.Descriptor   `json:"config"`
	Layers      []v1.Descriptor `json:"layers"`
	DiffIDs     []digest.Digest `json:"diffIDs"`
	Platform    v1.Platform     `json:"platform"`
	ImageConfig v1.ImageConfig  `json:"imageConfig"`
}

func newCatalog() *catalog {
	return &catalog{Version: catalogVersion, Images: map[string]*record{}}
}

// image converts a record to the exported value, copying slices.
func (r *record) image() Image {
	img := Image{
		ID:             r.ID,
		RepoTags:       append([]string{}, r.Names...),
		ManifestDigest: r.Manifest.Digest,
		Size:           r.Manifest.Size + r.Config.Size,
		Platform:       r.Platform,
		Config:         r.ImageConfig,
		Layers:         append([]v1.Descriptor{}, r.Layers...),
	}
	for _, l := range r.Layers {
		img.Size += l.Size
	}
	repos := map[string]bool{}
	for _, n := range r.Names {
		if ref, err := ParseReference(n); err == nil {
			repos[ref.Repository] = true
		}
	}
	for _, repo := range r.DigestRepos {
		repos[repo] = true
	}
	for repo := range repos {
		img.RepoDigests = append(img.RepoDigests, repo+"@"+r.target().String())
	}
	sort.Strings(img.RepoDigests)
	img.Config.Env = append([]string(nil), r.ImageConfig.Env...)
	img.Config.Entrypoint = append([]string(nil), r.ImageConfig.Entrypoint...)
	img.Config.Cmd = append([]string(nil), r.ImageConfig.Cmd...)
	img.Config.Labels = maps.Clone(r.ImageConfig.Labels)
	img.Config.ExposedPorts = maps.Clone(r.ImageConfig.ExposedPorts)
	img.Config.Volumes = maps.Clone(r.ImageConfig.Volumes)
	img.Platform.OSFeatures = append([]string(nil), r.Platform.OSFeatures...)
	for i := range img.Layers {
		img.Layers[i].Annotations = maps.Clone(img.Layers[i].Annotations)
		img.Layers[i].URLs = append([]string(nil), img.Layers[i].URLs...)
	}
	return img
}

// target returns the digest repo digests name.
func (r *record) target() digest.Digest {
	if r.Target != "" {
		return r.Target
	}
	return r.Manifest.Digest
}

// blobs lists every blob the record references.
func (r *record) blobs() []digest.Digest {
	out := []digest.Digest{r.Manifest.Digest, r.Config.Digest}
	for _, l := range r.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// blobsInUse is the set of blobs some image in the catalog references.
func (c *catalog) blobsInUse() map[digest.Digest]bool {
	used := map[digest.Digest]bool{}
	for _, r := range c.Images {
		for _, d := range r.blobs() {
			used[d] = true
		}
	}
	return used
}

// clone returns a deep enough copy of c for a read-modify-write: records
// are replaced, never changed in place, except through clone's copies.
func (c *catalog) clone() *catalog {
	n := newCatalog()
	for id, r := range c.Images {
		cp := *r
		cp.Names = append([]string(nil), r.Names...)
		cp.DigestRepos = append([]string(nil), r.DigestRepos...)
		n.Images[id] = &cp
	}
	return n
}

// isHex reports whether s is non-empty lowercase hex.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolve finds the image ref refers to; see Store.Get.
func (c *catalog) resolve(ref string) (*record, error) {
	if ref == "" {
		return nil, notFound(ref)
	}
	// A full ID or manifest digest.
	full := ref
	if len(ref) == 64 && isHex(ref) {
		full = "sha256:" + ref
	}
	if d, err := digest.Parse(full); err == nil {
		for _, r := range c.Images {
			if r.ID == d.String() {
				return r, nil
			}
		}
		for _, r := range c.sorted() {
			if r.Manifest.Digest == d || r.target() == d {
				return r, nil
			}
		}
	}
	// A name or a digest reference.
	if pr, err := ParseReference(ref); err == nil {
		if pr.Digest != "" {
			for _, r := range c.sorted() {
				if (r.Manifest.Digest == pr.Digest || r.target() == pr.Digest) && r.hasRepo(pr.Repository) {
					return r, nil
				}
			}
		} else {
			name := pr.String()
			for _, r := range c.Images {
				for _, n := range r.Names {
					if n == name {
						return r, nil
					}
				}
			}
		}
	}
	// A prefix of an ID or manifest digest.
	prefix := strings.TrimPrefix(ref, "sha256:")
	if isHex(prefix) {
		var found *record
		for _, r := range c.sorted() {
			if strings.HasPrefix(digest.Digest(r.ID).Encoded(), prefix) || strings.HasPrefix(r.Manifest.Digest.Encoded(), prefix) {
				if found != nil && found != r {
					return nil, fmt.Errorf("image reference %q matches %s and %s: %w", ref, found.ID, r.ID, ErrAmbiguous)
				}
				found = r
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, notFound(ref)
}

// hasRepo reports whether the record is named in repository repo.
func (r *record) hasRepo(repo string) bool {
	for _, d := range r.DigestRepos {
		if d == repo {
			return true
		}
	}
	for _, n := range r.Names {
		if pr, err := ParseReference(n); err == nil && pr.Repository == repo {
			return true
		}
	}
	return false
}

// sorted returns the records by ID, for deterministic resolution.
func (c *catalog) sorted() []*record {
	out := make([]*record, 0, len(c.Images))
	for _, r := range c.Images {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// fileStamp identifies one version of images.json.
type fileStamp struct {
	ino, size, mtimeNs int64
	exists             bool
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtimeNs: fi.ModTime().UnixNano(), exists: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st
}

func (s *Store) catalogPath() string { return filepath.Join(s.root, "images.json") }

// load returns the current catalog, re-reading images.json when another
// writer replaced it. The returned catalog must not be modified.
func (s *Store) load() (*catalog, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.catalogPath())
	var st fileStamp
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("image store: %w", err)
	default:
		st = stampOf(fi)
	}
	if s.cache != nil && st == s.stamp {
		return s.cache, nil
	}
	cat := newCatalog()
	if st.exists {
		b, err := os.ReadFile(s.catalogPath())
		if err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
		if err := json.Unmarshal(b, cat); err != nil {
			return nil, fmt.Errorf("image store: corrupt %s: %w", s.catalogPath(), err)
		}
		if cat.Version != catalogVersion {
			return nil, fmt.Errorf("image store: %s has version %d, this kubelab reads version %d", s.catalogPath(), cat.Version, catalogVersion)
		}
		if cat.Images == nil {
			cat.Images = map[string]*record{}
		}
		// Re-stat: the file read may be newer than fi; a stale stamp only
		// costs one more read later.
	}
	s.cache, s.stamp = cat, st
	return cat, nil
}

// update runs fn on a copy of the current catalog under the store's write
// lock (in-process mutex plus flock on root/lock) and, when fn succeeds,
// writes the result atomically. The function fn returns, if any, runs after
// the new catalog is visible, still under the lock.
func (s *Store) update(fn func(cat *catalog) (after func(), err error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	unlock, err := lockFile(filepath.Join(s.root, "lock"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer unlock()
	cur, err := s.load()
	if err != nil {
		return err
	}
	next := cur.clone()
	after, err := fn(next)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := writeFileAtomic(s.catalogPath(), b, 0o600); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if after != nil {
		after()
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
