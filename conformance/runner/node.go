package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/conformance/node"
	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/procstat"
)

// Node suite target syntax (Options.Targets["node"]).
const (
	// NodeNamePrefix starts a target that is a node of the user's already
	// registered, under the name that follows ("name=worker-1"), with the
	// API server given as the suite's endpoint (Options.Endpoints["node"]).
	// The suite binds its pods to that node.
	NodeNamePrefix = "name="
	// TargetNodeProcess is `EXE node --runtime process`, kubelab's kubelet
	// over kubelab's process runtime, which the child starts with the test
	// images imported, against `EXE apiserver --store memory` (or the
	// suite's endpoint).
	TargetNodeProcess = "process"
)

// Target.Endpoints entries of a node target.
const (
	nodeEndpointAPIServer = "apiserver="
	nodeEndpointName      = "node-name="
)

// The crash-loop back-off the runner gives `EXE node`: shorter than
// upstream's 10 s, so that the suite runs in about two minutes; the
// suite's bounds hold for upstream's too.
const (
	nodeBackoffInitial = "3s"
	nodeBackoffMax     = "24s"
)

// nodeRegisterTimeout bounds how long a started `EXE node` may take to
// register its Node.
const nodeRegisterTimeout = time.Minute

// NodeSuite returns the node suite's entry: conformance/node run against a
// kubelet through the API.
//
// Targets (Options.Targets["node"]):
//   - TargetNodeProcess: kubelab's kubelet over the registered process
//     runtime (with the test images of $KUBELAB_IMAGES or _out/images
//     imported), started by the child as `EXE node`, against `EXE apiserver
//     --store memory` also started by the child, or the suite's endpoint;
//   - name=NODE: a node of the user's already registered with the API
//     server given as the endpoint; its runtime must hold the test images.
//
// Endpoints (Options.Endpoints["node"]): an API server of the user's (a
// kubeconfig file or an http(s) URL). With no names, the target is
// TargetNodeProcess when the registry has the process runtime and the
// memory store.
func NodeSuite() Suite {
	return Suite{
		Name:         "node",
		Capabilities: node.Capabilities(),
		Targets:      nodeTargets,
		Declare:      declareNode,
	}
}

func nodeTargets(reg *spec.Registry, names, endpoints []string) ([]Target, error) {
	api, err := apiServerEndpoint("node", nodeEndpointAPIServer, endpoints)
	if err != nil {
		return nil, err
	}
	process := func() (Target, error) {
		if _, err := reg.Runtime(localRuntime); err != nil {
			return Target{}, fmt.Errorf("node target %q: %w", TargetNodeProcess, err)
		}
		if api != nil {
			return Target{Name: TargetNodeProcess + "@endpoints", Plugin: localRuntime, Endpoints: api}, nil
		}
		if _, err := reg.Store(defaultSchedulerStore); err != nil {
			return Target{}, fmt.Errorf("node target %q: %w", TargetNodeProcess, err)
		}
		return Target{Name: TargetNodeProcess, Plugin: localRuntime, Server: defaultSchedulerStore}, nil
	}
	if len(names) == 0 {
		t, err := process()
		if errors.Is(err, spec.ErrNotFound) {
			fmt.Fprintf(os.Stderr, "node suite: no default target: %v\n", err)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []Target{t}, nil
	}
	var out []Target
	for _, n := range names {
		switch {
		case n == TargetNodeProcess:
			t, err := process()
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		case strings.HasPrefix(n, NodeNamePrefix):
			name := strings.TrimPrefix(n, NodeNamePrefix)
			if name == "" {
				return nil, fmt.Errorf("node target %q: empty node name: %w", n, spec.ErrInvalid)
			}
			if api == nil {
				return nil, fmt.Errorf("node target %q: a node of yours needs the API server it is registered with (--endpoints node=KUBECONFIG): %w", n, spec.ErrInvalid)
			}
			out = append(out, Target{Name: "node:" + name, Endpoints: append(append([]string(nil), api...), nodeEndpointName+name)})
		default:
			return nil, fmt.Errorf("node target %q (known: %s, %sNODE): %w", n, TargetNodeProcess, NodeNamePrefix, spec.ErrNotFound)
		}
	}
	return out, nil
}

// nodeEndpoint returns the value of t's endpoint entry with prefix.
func nodeEndpoint(t Target, prefix string) string {
	for _, e := range t.Endpoints {
		if v, ok := strings.CutPrefix(e, prefix); ok {
			return v
		}
	}
	return ""
}

func declareNode(_ context.Context, reg *spec.Registry, t Target, dryRun bool) (func() error, error) {
	var apiConfig func(context.Context) (*rest.Config, error)
	ep := nodeEndpoint(t, nodeEndpointAPIServer)
	if ep != "" {
		cfg, err := endpointConfig(ep)
		if err != nil {
			return nil, err
		}
		apiConfig = func(context.Context) (*rest.Config, error) { return cfg, nil }
	}
	if name := nodeEndpoint(t, nodeEndpointName); name != "" {
		node.Register(node.Target{Name: t.Name, NodeName: name, Config: apiConfig})
		return nil, nil
	}
	p, err := reg.Runtime(t.Plugin)
	if err != nil {
		return nil, fmt.Errorf("node target %q: %w", t.Name, err)
	}
	np := &nodeProcess{plugin: p, name: "kl-conf-" + rand.String(6), apiConfig: apiConfig}
	if ep != "" {
		if st, err := os.Stat(ep); err == nil && !st.IsDir() {
			np.kubeconfig = ep
		} else {
			np.server = ep
		}
	} else {
		if _, err := reg.Store(t.Server); err != nil {
			return nil, fmt.Errorf("node target %q: %w", t.Name, err)
		}
		np.api = &apiserverProcess{plugin: t.Server}
		np.apiConfig = np.api.config
	}
	node.Register(node.Target{Name: t.Name, NodeName: np.name, Config: np.config})
	if dryRun {
		return nil, nil
	}
	if np.images, err = runtime.FindImages(); err != nil {
		return nil, fmt.Errorf("node target %q: %w", t.Name, err)
	}
	return np.stop, nil
}

// nodeProcess is `EXE node --runtime PLUGIN` over a root directory of its
// own holding the test images, against the API server api started by the
// child or one of the user's, started on first use. A process, not an
// in-process kubelet: conformance/ never imports reference/, and the
// binary that runs the child is a kubelab that has the kubelet.
type nodeProcess struct {
	plugin spec.RuntimePlugin
	images string
	name   string

	api        *apiserverProcess // nil with an API server of the user's
	apiConfig  func(context.Context) (*rest.Config, error)
	kubeconfig string // the user's kubeconfig, or
	server     string // the user's API server URL

	once    sync.Once
	cfg     *rest.Config
	err     error
	cmd     *exec.Cmd
	exited  chan struct{}
	dir     string
	options map[string]string // the runtime's
}

func (p *nodeProcess) config(ctx context.Context) (*rest.Config, error) {
	p.once.Do(func() { p.cfg, p.err = p.start(ctx) })
	return p.cfg, p.err
}

func (p *nodeProcess) runtimeRoot() string { return filepath.Join(p.dir, "root", "runtime") }

func (p *nodeProcess) start(ctx context.Context) (*rest.Config, error) {
	cfg, err := p.apiConfig(ctx)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := sweepStaleNodes(ctx, p.plugin); err != nil {
		fmt.Fprintf(os.Stderr, "node suite: %v\n", err)
	}
	dir, err := os.MkdirTemp("", strings.TrimSuffix(nodeDirPattern, "*"))
	if err != nil {
		return nil, err
	}
	p.dir = dir
	cidr := runtime.RandomPodCIDR()
	p.options = map[string]string{spec.RuntimeOptionPodCIDR: cidr}
	if err := p.claim(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.runtimeRoot(), 0o755); err != nil {
		return nil, err
	}
	if err := runtime.ImportImages(ctx, p.plugin, p.runtimeRoot(), p.images); err != nil {
		return nil, fmt.Errorf("node %s: %w", p.name, err)
	}
	kcfg := p.kubeconfig
	switch {
	case p.api != nil:
		kcfg = filepath.Join(p.api.dir, "kubeconfig")
	case kcfg == "":
		kcfg = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kcfg, []byte(urlKubeconfig(p.server)), 0o600); err != nil {
			return nil, err
		}
	}
	args := []string{"node", "--kubeconfig", kcfg, "--node-name", p.name, "--runtime", p.plugin.Name,
		"--root", filepath.Join(dir, "root"), "--node-ip", "127.0.0.1", "--pod-cidr", cidr, "--port", "0",
		"--crashloop-backoff-initial", nodeBackoffInitial, "--crashloop-backoff-max", nodeBackoffMax}
	// The kubelet outlives this spec's context: it serves the whole run.
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s node: %w", exe, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(nodeRegisterTimeout)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("%s %s exited during start", exe, strings.Join(args, " "))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		_, err := client.CoreV1().Nodes().Get(ctx, p.name, metav1.GetOptions{})
		if err == nil {
			return cfg, nil
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			return nil, fmt.Errorf("node %s did not register in %v: %w", p.name, nodeRegisterTimeout, err)
		}
	}
}

// nodeDirPattern names the directories of started nodes in os.TempDir().
const nodeDirPattern = "kl-node-conf-*"

// nodeOwnerFile, in a node's directory, says which process started the
// node and with what runtime options, so that a later run can remove what
// a crashed run left running (a killed kubelet leaves its pods running).
const nodeOwnerFile = "node-owner.json"

// nodeOwner is the content of nodeOwnerFile.
type nodeOwner struct {
	// Pid and Start (its start time, procstat.StartTime) identify the
	// process, even when the PID is reused.
	Pid     int               `json:"pid"`
	Start   uint64            `json:"start"`
	Plugin  string            `json:"plugin"`
	Options map[string]string `json:"options,omitempty"`
}

func (p *nodeProcess) claim() error {
	b, err := json.Marshal(nodeOwner{Pid: os.Getpid(), Start: procstat.StartTime(os.Getpid()), Plugin: p.plugin.Name, Options: p.options})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir, nodeOwnerFile), b, 0o644)
}

// sweepStaleNodes removes the sandboxes and directories that runs of the
// node suite over plugin left when they crashed: those whose owner process
// is gone.
func sweepStaleNodes(ctx context.Context, plugin spec.RuntimePlugin) error {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), nodeDirPattern))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, nodeOwnerFile))
		if err != nil {
			continue
		}
		var o nodeOwner
		if json.Unmarshal(b, &o) != nil || o.Plugin != plugin.Name {
			continue
		}
		if start := procstat.StartTime(o.Pid); start != 0 && start == o.Start {
			continue // its run is alive
		}
		stale := &nodeProcess{plugin: plugin, dir: dir, options: o.Options, name: filepath.Base(dir)}
		if err := stale.removeSandboxes(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cleaning up after a crashed run in %s: %w", dir, err))
			continue
		}
		errs = append(errs, os.RemoveAll(dir))
	}
	return errors.Join(errs...)
}

// stop ends the kubelet, removes every sandbox it left in its runtime
// (a stopped kubelet leaves its pods running), then ends the API server, if
// started, and removes the directories.
func (p *nodeProcess) stop() error {
	var errs []error
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		errs = append(errs, p.removeSandboxes(ctx))
		cancel()
	}
	if p.api != nil {
		errs = append(errs, p.api.stop())
	}
	if p.dir != "" {
		errs = append(errs, os.RemoveAll(p.dir))
	}
	return errors.Join(errs...)
}

// removeSandboxes opens the node's runtime root again, as the kubelet's
// runtime left it, and removes every sandbox there: the root is the
// node's alone.
func (p *nodeProcess) removeSandboxes(ctx context.Context) error {
	rt, closer, err := p.plugin.New(ctx, spec.RuntimeConfig{RootDir: p.runtimeRoot(), Options: p.options})
	if err != nil {
		return fmt.Errorf("node %s: reopening its runtime to clean up: %w", p.name, err)
	}
	var errs []error
	sbs, err := rt.ListPodSandbox(ctx, nil)
	errs = append(errs, err)
	for _, s := range sbs {
		if err := rt.RemovePodSandbox(ctx, s.GetId()); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", s.GetId(), err))
		}
	}
	if closer != nil {
		errs = append(errs, closer())
	}
	errs = append(errs, rt.Close(ctx))
	return errors.Join(errs...)
}
