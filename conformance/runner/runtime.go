package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/spec"
)

// Runtime suite targets that are not registry names.
const (
	// TargetProcessGRPC is the process runtime served over CRI gRPC: the
	// child starts the running binary's `runtime --listen` command on a
	// socket of its own and tests it through plugins/runtime/cri.
	TargetProcessGRPC = "process-grpc"
	// TargetContainerd is a real containerd started by conformance/containerd
	// for the run, tested through plugins/runtime/cri.
	TargetContainerd = "containerd"
	// CRIEndpointPrefix starts the name of a target that is a CRI endpoint
	// of the user's: "cri@unix:///run/containerd/containerd.sock".
	CRIEndpointPrefix = "cri@"
)

// Registered runtime plugins the runtime suite's targets are built on. The
// runner reaches plugins only through the registry it is given, by name, as
// it names the scheduler suite's default store "memory"; a registry without
// them (a kubelab of your own) lacks the targets built on them.
const (
	// localRuntime is kubelab's process runtime (plugins/runtime/process):
	// the default in-process target and the one TargetProcessGRPC serves.
	localRuntime = "process"
	// criClientRuntime connects to a CRI endpoint given as
	// spec.RuntimeConfig.Endpoint (plugins/runtime/cri, k8s.io/cri-client):
	// every endpoint target, TargetProcessGRPC and TargetContainerd are
	// tested through it.
	criClientRuntime = "cri"
)

// Servers a runtime target's child starts (Target.Server).
const (
	serverRuntimeGRPC = "kubelab-runtime"
	serverContainerd  = "containerd"
)

// runtimeServerStartTimeout bounds the start of `kubelab runtime --listen`.
const runtimeServerStartTimeout = time.Minute

// RuntimeSuite returns the runtime suite's entry: conformance/runtime run
// against container runtimes through spec.Runtime (CRI).
//
// Targets: each name is a registered runtime plugin (run in the child
// process, with the test images imported into a fresh root directory),
// TargetProcessGRPC or TargetContainerd. Each endpoint (a CRI socket,
// unix:///PATH) is a target of its own named CRIEndpointPrefix+endpoint,
// which must already hold the test images. With neither, the targets are
// "process", TargetProcessGRPC and, when containerd can run here,
// TargetContainerd (a note on stderr says why it is left out otherwise).
// The test images come from $KUBELAB_IMAGES or _out/images (`make images`).
// Every plugin target (and the process runtime TargetProcessGRPC serves) is
// started with a random free pod range (spec.RuntimeOptionPodCIDR).
func RuntimeSuite() Suite {
	return Suite{
		Name:         "runtime",
		Capabilities: runtime.Capabilities(),
		Targets:      runtimeTargets,
		Declare:      declareRuntime,
	}
}

func runtimeTargets(reg *spec.Registry, names, endpoints []string) ([]Target, error) {
	if len(names) == 0 && len(endpoints) == 0 {
		var out []Target
		if _, err := reg.Runtime(localRuntime); err == nil {
			out = append(out,
				Target{Name: localRuntime, Plugin: localRuntime},
				Target{Name: TargetProcessGRPC, Plugin: localRuntime, Server: serverRuntimeGRPC})
		}
		if err := containerd.Available(); err == nil {
			out = append(out, Target{Name: TargetContainerd, Server: serverContainerd})
		} else {
			fmt.Fprintf(os.Stderr, "runtime suite: target %q left out: %v\n", TargetContainerd, err)
		}
		return out, nil
	}
	var out []Target
	for _, n := range names {
		switch n {
		case TargetProcessGRPC:
			out = append(out, Target{Name: n, Plugin: localRuntime, Server: serverRuntimeGRPC})
		case TargetContainerd:
			out = append(out, Target{Name: n, Server: serverContainerd})
		default:
			if _, err := reg.Runtime(n); err != nil {
				return nil, fmt.Errorf("runtime target %q (also known: %s, %s): %w", n, TargetProcessGRPC, TargetContainerd, err)
			}
			out = append(out, Target{Name: n, Plugin: n})
		}
	}
	for _, ep := range endpoints {
		if !strings.HasPrefix(ep, "unix://") {
			return nil, fmt.Errorf("runtime endpoint %q: want a CRI socket, unix:///PATH: %w", ep, spec.ErrInvalid)
		}
		out = append(out, Target{Name: CRIEndpointPrefix + ep, Endpoints: []string{ep}})
	}
	return out, nil
}

// podNetworkOptions are the options every runtime plugin under test is
// started with in a child: spec.RuntimeOptionPodCIDR, a random /24 of
// runtime.RandomPodCIDR's range that no host interface's address is in
// (a running `kubelab runtime`'s bridge holds an address of its range),
// so that no two runs, nor a run and kubelab's default 10.87.0.0/16,
// share a pod network.
func podNetworkOptions() map[string]string {
	return map[string]string{spec.RuntimeOptionPodCIDR: freePodCIDR(hostAddrs())}
}

// freePodCIDR draws runtime.RandomPodCIDR ranges until one holds none of
// used (64 draws at most, then the last one drawn).
func freePodCIDR(used []net.IP) string {
	var c string
	for range 64 {
		c = runtime.RandomPodCIDR()
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(used, n.Contains) {
			return c
		}
	}
	return c
}

// hostAddrs are the IP addresses of the host's interfaces (none when they
// cannot be read).
func hostAddrs() []net.IP {
	addrs, _ := net.InterfaceAddrs()
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out
}

func declareRuntime(ctx context.Context, reg *spec.Registry, t Target, dryRun bool) (func() error, error) {
	if len(t.Endpoints) > 0 {
		client, err := reg.Runtime(criClientRuntime)
		if err != nil {
			return nil, fmt.Errorf("runtime target %q: no CRI client: %w", t.Name, err)
		}
		runtime.Register(runtime.EndpointTarget(t.Name, client, t.Endpoints[0]))
		return nil, nil
	}
	images := ""
	if !dryRun {
		var err error
		if images, err = runtime.FindImages(); err != nil {
			return nil, fmt.Errorf("runtime target %q: %w", t.Name, err)
		}
	}
	switch t.Server {
	case serverContainerd:
		client, err := reg.Runtime(criClientRuntime)
		if err != nil {
			return nil, fmt.Errorf("runtime target %q: no CRI client: %w", t.Name, err)
		}
		runtime.Register(runtime.ContainerdTarget(t.Name, client, images))
	case serverRuntimeGRPC:
		p, err := reg.Runtime(t.Plugin)
		if err != nil {
			return nil, fmt.Errorf("runtime target %q: %w", t.Name, err)
		}
		client, err := reg.Runtime(criClientRuntime)
		if err != nil {
			return nil, fmt.Errorf("runtime target %q: no CRI client: %w", t.Name, err)
		}
		srv := &runtimeServer{plugin: p, client: client, images: images}
		runtime.Register(runtime.Target{Name: t.Name, Start: srv.start})
	case "":
		p, err := reg.Runtime(t.Plugin)
		if err != nil {
			return nil, fmt.Errorf("runtime target %q: %w", t.Name, err)
		}
		target := runtime.PluginTarget(p, images, podNetworkOptions())
		target.Name = t.Name
		runtime.Register(target)
	default:
		return nil, fmt.Errorf("runtime target %q: unknown server %q: %w", t.Name, t.Server, spec.ErrInvalid)
	}
	return nil, nil
}

// runtimeServerPattern names the directories of runtime servers in
// os.TempDir().
const runtimeServerPattern = "kl-rtgrpc-*"

// runtimeServer is `EXE runtime --listen unix://DIR/cri.sock --root DIR/root
// --runtime PLUGIN`, started when the first spec needs it. Before it starts,
// the directories of servers whose run crashed are cleaned up
// (runtime.SweepStale).
type runtimeServer struct {
	plugin spec.RuntimePlugin
	client spec.RuntimePlugin // the CRI client the suite reaches the server through
	images string
}

func (s *runtimeServer) start(ctx context.Context) (spec.Runtime, func() error, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	if err := runtime.SweepStale(ctx, s.plugin, runtimeServerPattern); err != nil {
		fmt.Fprintf(os.Stderr, "runtime suite: %v\n", err)
	}
	dir, err := os.MkdirTemp("", strings.TrimSuffix(runtimeServerPattern, "*"))
	if err != nil {
		return nil, nil, err
	}
	root := filepath.Join(dir, "root")
	options := podNetworkOptions()
	if err := runtime.ClaimRoot(dir, s.plugin.Name, root, options); err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	if err := runtime.ImportImages(ctx, s.plugin, root, s.images); err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	sock := "unix://" + filepath.Join(dir, "cri.sock")
	args := []string{"runtime", "--listen", sock, "--root", root, "--runtime", s.plugin.Name}
	for k, v := range options {
		args = append(args, "--option", k+"="+v)
	}
	// The server outlives this spec's context: it serves the whole run.
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("starting %s runtime: %w", exe, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stopServer := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return os.RemoveAll(dir)
	}
	deadline := time.Now().Add(runtimeServerStartTimeout)
	for {
		select {
		case <-exited:
			return nil, nil, errors.Join(fmt.Errorf("%s %s exited during start", exe, strings.Join(args, " ")), os.RemoveAll(dir))
		case <-ctx.Done():
			return nil, nil, errors.Join(ctx.Err(), stopServer())
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := os.Stat(strings.TrimPrefix(sock, "unix://")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, errors.Join(errors.New("the CRI server did not listen in time"), stopServer())
		}
	}
	rt, stop, err := runtime.EndpointTarget(TargetProcessGRPC, s.client, sock).Start(ctx)
	if err != nil {
		return nil, nil, errors.Join(err, stopServer())
	}
	return rt, func() error { return errors.Join(stop(), stopServer()) }, nil
}
