package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/spec"
)

// Names of the test images (built by `make images` into _out/images, see
// spec/ociimage). A target must hold them before the suite runs: the
// suite never pulls them.
const (
	// BusyboxImage has a shell and busybox's applets; default command "sh".
	BusyboxImage = "kubelab.local/busybox:1.0"
	// WorkloadImage has entrypoint /workload (tools/workload), default
	// arguments "pause", and no shell.
	WorkloadImage = "kubelab.local/workload:1.0"
)

// ImageArchives are the archive files, in the images directory, of the
// images the suite uses (the pause image is for runtimes that need one).
var ImageArchives = []string{"busybox.tar", "workload.tar", "pause.tar"}

// ImagesEnv names an environment variable holding the directory of the
// test image archives; FindImages looks there first.
const ImagesEnv = "KUBELAB_IMAGES"

// Target is the runtime under test in one run of the suite.
type Target struct {
	// Name is how reports name the target, e.g. "process" or
	// "containerd".
	Name string
	// Capabilities are the optional capabilities the target claims. The
	// suite has none yet: every capability is mandatory.
	Capabilities spec.Capabilities
	// Start starts or connects to the runtime. The suite calls it once,
	// when the first spec needs the runtime, and calls the returned stop
	// function, which may be nil, after the last spec. The runtime must
	// already hold BusyboxImage and WorkloadImage.
	Start func(ctx context.Context) (spec.Runtime, func() error, error)
}

// FindImages returns the directory holding the test image archives: the
// one named by ImagesEnv, else the first "_out/images" found in the working
// directory or one of its parents (the repository's, after `make images`).
func FindImages() (string, error) {
	if d := os.Getenv(ImagesEnv); d != "" {
		return checkImages(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "_out", "images")
		if _, err := os.Stat(filepath.Join(cand, ImageArchives[0])); err == nil {
			return checkImages(cand)
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", fmt.Errorf("no test images: set %s to a directory holding %v, or run `make images` in the kubelab repository (writes _out/images): %w",
		ImagesEnv, ImageArchives, spec.ErrNotFound)
}

func checkImages(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, a := range ImageArchives {
		if _, err := os.Stat(filepath.Join(abs, a)); err != nil {
			return "", fmt.Errorf("test image archive %s missing in %s (run `make images`): %w", a, abs, spec.ErrNotFound)
		}
	}
	return abs, nil
}

// ImportImages imports the test image archives of imagesDir into the image
// store p keeps under rootDir, with p.ImportImages; a plugin without it
// (no local image store) gets an error wrapping spec.ErrUnsupported.
func ImportImages(ctx context.Context, p spec.RuntimePlugin, rootDir, imagesDir string) error {
	if p.ImportImages == nil {
		return fmt.Errorf("runtime plugin %q loads no image archives (no ImportImages): run it at an endpoint that holds the test images: %w", p.Name, spec.ErrUnsupported)
	}
	var archives []string
	for _, a := range ImageArchives {
		archives = append(archives, filepath.Join(imagesDir, a))
	}
	return p.ImportImages(ctx, rootDir, archives)
}

// PluginTarget returns the Target of a registered runtime plugin that keeps
// an image store under its RootDir and says how to fill it (ImportImages:
// kubelab's process runtime and the runtimes built over it): Start imports
// the test images of imagesDir into a fresh root directory and starts the plugin there with options. Stop
// removes every sandbox the suite left, then the root directory. Start
// first cleans up after earlier runs of p that crashed (SweepStale).
func PluginTarget(p spec.RuntimePlugin, imagesDir string, options map[string]string) Target {
	return Target{
		Name:         p.Name,
		Capabilities: p.Capabilities,
		Start: func(ctx context.Context) (spec.Runtime, func() error, error) {
			if err := SweepStale(ctx, p, RootPattern); err != nil {
				fmt.Fprintf(os.Stderr, "runtime suite: %v\n", err)
			}
			root, err := os.MkdirTemp("", strings.TrimSuffix(RootPattern, "*"))
			if err != nil {
				return nil, nil, err
			}
			if err := ClaimRoot(root, p.Name, root, options); err != nil {
				_ = os.RemoveAll(root)
				return nil, nil, err
			}
			if err := ImportImages(ctx, p, root, imagesDir); err != nil {
				_ = os.RemoveAll(root)
				return nil, nil, err
			}
			rt, closer, err := p.New(ctx, spec.RuntimeConfig{RootDir: root, Options: options})
			if err != nil {
				_ = os.RemoveAll(root)
				return nil, nil, err
			}
			return rt, func() error {
				err := RemoveAll(context.Background(), rt)
				if closer != nil {
					err = errors.Join(err, closer())
				}
				return errors.Join(err, os.RemoveAll(root))
			}, nil
		},
	}
}

// EndpointTarget returns the Target of any CRI runtime serving on endpoint
// (unix:///PATH), reached through client: a runtime plugin that connects to
// spec.RuntimeConfig.Endpoint (kubelab's plugins/runtime/cri, over
// k8s.io/cri-client). The runtime must already hold the test images (import
// _out/images/*.tar into it, e.g. with `ctr -n k8s.io images import`). Stop
// removes the sandboxes the suite left and closes the connection.
func EndpointTarget(name string, client spec.RuntimePlugin, endpoint string) Target {
	return Target{
		Name: name,
		Start: func(ctx context.Context) (spec.Runtime, func() error, error) {
			return connect(ctx, client, endpoint, nil)
		},
	}
}

// connect connects to endpoint with client; the returned stop removes the
// suite's sandboxes, closes the connection and calls then, if set.
func connect(ctx context.Context, client spec.RuntimePlugin, endpoint string, then func() error) (spec.Runtime, func() error, error) {
	rt, closer, err := client.New(ctx, spec.RuntimeConfig{Endpoint: endpoint})
	if err != nil {
		return nil, nil, err
	}
	if closer == nil {
		closer = func() error { return nil }
	}
	if _, err := rt.Version(ctx, "v1"); err != nil {
		_ = closer()
		return nil, nil, fmt.Errorf("CRI endpoint %s does not answer Version: %w", endpoint, err)
	}
	return rt, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err := errors.Join(RemoveAll(ctx, rt), closer())
		if then != nil {
			err = errors.Join(err, then())
		}
		return err
	}, nil
}

// ContainerdTarget returns the Target of a real containerd (Debian's, with
// runc), started by conformance/containerd with the test images of
// imagesDir and driven through client (see EndpointTarget); Stop stops it
// and removes everything it made. Where containerd cannot run, Start fails
// with an error wrapping spec.ErrUnsupported and the suite's specs are
// skipped.
func ContainerdTarget(name string, client spec.RuntimePlugin, imagesDir string) Target {
	return Target{
		Name: name,
		Start: func(ctx context.Context) (spec.Runtime, func() error, error) {
			var archives []string
			for _, a := range ImageArchives {
				archives = append(archives, filepath.Join(imagesDir, a))
			}
			d, err := containerd.Start(ctx, containerd.Options{Images: archives, StartTimeout: 2 * time.Minute})
			if err != nil {
				return nil, nil, err
			}
			rt, stop, err := connect(ctx, client, d.Endpoint(), d.Stop)
			if err != nil {
				return nil, nil, errors.Join(err, d.Stop())
			}
			return rt, stop, nil
		},
	}
}

// RemoveAll removes every sandbox of rt whose namespace is the suite's
// (SandboxNamespace), and with them their containers.
func RemoveAll(ctx context.Context, rt spec.Runtime) error {
	sbs, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range sbs {
		if s.GetMetadata().GetNamespace() != SandboxNamespace {
			continue
		}
		if err := rt.RemovePodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", s.Id, err))
		}
	}
	return errors.Join(errs...)
}

// RandomPodCIDR returns a random /24 in 10.150.0.0-10.199.255.0 for the pod
// network of a process runtime under test (the "pod-cidr" option), so that
// runs side by side, and kubelab's default 10.87.0.0/16, rarely meet.
func RandomPodCIDR() string {
	return fmt.Sprintf("10.%d.%d.0/24", 150+rand.IntN(50), rand.IntN(256))
}
