// Package critools builds and runs Kubernetes' CRI tools from
// sigs.k8s.io/cri-tools against kubelab's runtimes: crictl, the CRI command
// line, and critest, CRI's own validation suite (whose [Conformance] specs
// are the bar every CRI runtime is held to).
//
// The tools are not dependencies of kubelab's module (cri-tools pulls in a
// large dependency tree): Crictl and Critest build them from the module
// cache (`go mod download`, which fetches through the Go module proxy the
// first time) into a cache directory, once, and return the binary's path.
//
// KubelabRuntime serves kubelab's process runtime the way a user would,
// with `kubelab runtime --listen` from a freshly built kubelab binary, for
// the tools to talk to.
package critools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec/ociimage"
)

// Module and Version are the cri-tools release built: the one matching
// kubelab's k8s.io/cri-api minor version.
const (
	Module  = "sigs.k8s.io/cri-tools"
	Version = "v1.37.0"
)

// CacheDir returns where the built tools are kept: $KUBELAB_CRI_TOOLS_DIR,
// else kubelab/cri-tools-VERSION in the user's cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv("KUBELAB_CRI_TOOLS_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "kubelab", "cri-tools-"+Version), nil
}

// Crictl returns the path of crictl, building it first when the cache has
// none.
func Crictl(ctx context.Context) (string, error) {
	return build(ctx, "crictl", "build")
}

// Critest returns the path of critest (a compiled Ginkgo test binary),
// building it first when the cache has none.
func Critest(ctx context.Context) (string, error) {
	return build(ctx, "critest", "test", "-c")
}

// build compiles ./cmd/NAME of the cri-tools module with `go goArgs...`.
// It works in the module's directory in the module cache (read-only, but
// go writes only the output and its build cache), and renames the result
// into place so that concurrent builds do not see a partial binary.
func build(ctx context.Context, name string, goArgs ...string) (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src, err := moduleDir(ctx)
	if err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	defer os.Remove(tmp)
	args := append(append([]string{}, goArgs...), "-trimpath", "-o", tmp, "./cmd/"+name)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s %s: go %s: %v\n%s", Module, Version, strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// moduleDir downloads cri-tools into the module cache when missing and
// returns its directory there.
func moduleDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", Module+"@"+Version)
	cmd.Dir = os.TempDir() // outside any module: nothing touches kubelab's go.mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", Module, Version, info.Error)
	}
	if err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %v\n%s", Module, Version, err, out)
	}
	return info.Dir, nil
}

// WriteTestImagesFile writes the YAML file critest's -test-images-file
// reads, naming kubelab's local test images: busybox as the default test
// container image and the webserver image as the web server image.
func WriteTestImagesFile(path string) error {
	return os.WriteFile(path, []byte("defaultTestContainerImage: "+ociimage.BusyboxImageName+"\nwebServerTestImage: "+ociimage.WebserverImageName+"\n"), 0o644)
}

// RuntimeServer is a `kubelab runtime --listen` process serving the
// process runtime.
type RuntimeServer struct {
	// Endpoint is the CRI endpoint, unix:// and the socket path.
	Endpoint string
	// Root is the runtime's --root.
	Root string
	// Binary is the kubelab binary that serves it.
	Binary string

	cmd    *exec.Cmd
	exited chan struct{}
}

// KubelabRuntime imports the image archives into a process runtime rooted
// in dir with `kubelab runtime import`, serves it with `kubelab runtime
// --listen` on dir/cri.sock (pod network podCIDR; instance names the
// runtime's host-wide resources), and waits until it answers. kubelab is
// the kubelab binary. Stop removes every pod and stops it.
func KubelabRuntime(ctx context.Context, kubelab, dir, podCIDR, instance string, images []string) (*RuntimeServer, error) {
	root := filepath.Join(dir, "root")
	if len(images) > 0 {
		args := append([]string{"runtime", "import", "--image-dir", filepath.Join(root, "images")}, images...)
		if out, err := exec.CommandContext(ctx, kubelab, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kubelab runtime import: %v\n%s", err, out)
		}
	}
	s := &RuntimeServer{Endpoint: "unix://" + filepath.Join(dir, "cri.sock"), Root: root, Binary: kubelab, exited: make(chan struct{})}
	s.cmd = exec.Command(kubelab, "runtime", "--listen", s.Endpoint, "--root", root,
		"--option", "pod-cidr="+podCIDR, "--option", "instance="+instance)
	log, err := os.Create(filepath.Join(dir, "runtime.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	conn, err := grpc.NewClient(s.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.Stop()
		return nil, err
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	for {
		if _, err := rc.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "runtime.log"))
			return nil, fmt.Errorf("kubelab runtime exited while starting:\n%s", b)
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("kubelab runtime did not answer: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop removes every pod sandbox (containers keep running when `kubelab
// runtime` exits, by design) and stops the server with SIGINT.
func (s *RuntimeServer) Stop() error {
	var errs []error
	select {
	case <-s.exited:
	default:
		errs = append(errs, RemoveAllPods(s.Endpoint))
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	return errors.Join(errs...)
}

// RemoveAllPods stops and removes every pod sandbox of the CRI runtime at
// endpoint (and so every container).
func RemoveAllPods(endpoint string) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sbs, err := rc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var errs []error
	for _, sb := range sbs.Items {
		if _, err := rc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, err)
		}
		if _, err := rc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SpecResult is one critest spec's outcome.
type SpecResult struct {
	// Name is the spec's full text (containers and leaf).
	Name string
	// State is Ginkgo's: "passed", "failed", "skipped", ...
	State string
	// Failure is the failure message, when it failed.
	Failure string
}

// RunCritest runs critest's [Conformance] specs against the CRI runtime at
// endpoint, with kubelab's local images as its test images, and returns
// every spec's outcome from critest's Ginkgo JSON report. dir receives
// the images file, the report and critest's output (critest.log). A run
// with failing specs is not an error; a run that produces no report is.
func RunCritest(ctx context.Context, critest, endpoint, dir string, extraArgs ...string) ([]SpecResult, error) {
	imagesFile := filepath.Join(dir, "critest-images.yaml")
	if err := WriteTestImagesFile(imagesFile); err != nil {
		return nil, err
	}
	report := filepath.Join(dir, "critest-report.json")
	args := append([]string{
		"-runtime-endpoint", endpoint, "-image-endpoint", endpoint,
		"-test-images-file", imagesFile,
		"-ginkgo.focus", `\[Conformance\]`,
		"-ginkgo.no-color",
		"-ginkgo.json-report", report,
	}, extraArgs...)
	log, err := os.Create(filepath.Join(dir, "critest.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, critest, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	runErr := cmd.Run()
	b, err := os.ReadFile(report)
	if err != nil {
		return nil, fmt.Errorf("critest wrote no report (%v): %w; see %s", runErr, err, log.Name())
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("critest report: %w", err)
	}
	var out []SpecResult
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			out = append(out, SpecResult{Name: s.FullText(), State: s.State.String(), Failure: s.Failure.Message})
		}
	}
	return out, nil
}

// HttpdImageName is the image critest's "Multiple Containers" specs run
// as a web server (they pull it from registry.k8s.io).
const HttpdImageName = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"

// BuildSubstituteImages writes, into outDir, local stand-ins for the
// registry images critest's [Conformance] specs need beyond the test
// images file, under their upstream names (nothing here can pull them):
// HttpdImageName, busybox (Debian's busybox-static) whose default command
// logs a line saying httpd and serves an index page on port 80 with
// busybox's httpd applet — what those specs check: HTTP 200 on the pod's
// IP, "httpd" in the log, echo through ExecSync. It returns the archives'
// paths.
func BuildSubstituteImages(outDir string) ([]string, error) {
	s, err := ociimage.BusyboxImage(ociimage.DefaultBusybox)
	if err != nil {
		return nil, err
	}
	s.Names = []string{HttpdImageName}
	s.Files = append(s.Files, ociimage.File{Path: "/www/index.html", Mode: 0o644, Content: []byte("<html><body>It works! (kubelab's stand-in for httpd)</body></html>\n")})
	s.Config.Cmd = []string{"sh", "-c", "echo 'httpd: serving /www on port 80 (busybox httpd, a local stand-in)'; exec busybox httpd -f -p 80 -h /www"}
	img, err := ociimage.Build(s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	p := filepath.Join(outDir, "critest-httpd.tar")
	if err := img.WriteArchiveFile(p); err != nil {
		return nil, err
	}
	return []string{p}, nil
}
