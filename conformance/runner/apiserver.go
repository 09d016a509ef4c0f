package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/conformance/apiserver"
	"github.com/kubelab/kubelab/spec"
)

// apiserverStartTimeout bounds the start of an API server for a target.
const apiserverStartTimeout = 2 * time.Minute

// APIServerSuite returns the apiserver suite's entry: conformance/apiserver
// run against kubelab's API server over store plugins, or against any API
// server.
//
// Targets: each name is a registered store plugin; the child starts the
// running binary's `apiserver` command over it (so the kubelab binary, or a
// binary built with cli.NewRootCommand, must be the one re-executed), on a
// free port with a fresh data dir, when the first spec runs. Endpoints
// (Options.Endpoints["apiserver"]) name an API server of the user's — a
// kubeconfig file, or an http(s) URL — tested as target "endpoints". With
// neither, the targets are every registered store plugin whose name does not
// start with BrokenPrefix.
func APIServerSuite() Suite {
	return Suite{
		Name:         "apiserver",
		Capabilities: apiserver.Capabilities(),
		Targets:      apiserverTargets,
		Declare:      declareAPIServer,
	}
}

// apiServerEndpoint checks the at most one API server endpoint a suite that
// starts its own components accepts (a kubeconfig file or an http(s) URL)
// and returns it as the target's endpoints, marked with prefix; nil without
// one.
func apiServerEndpoint(suite, prefix string, endpoints []string) ([]string, error) {
	switch len(endpoints) {
	case 0:
		return nil, nil
	case 1:
		if _, err := endpointConfig(endpoints[0]); err != nil {
			return nil, err
		}
		return []string{prefix + endpoints[0]}, nil
	default:
		return nil, fmt.Errorf("%s suite: one API server endpoint, got %d: %w", suite, len(endpoints), spec.ErrInvalid)
	}
}

func apiserverTargets(reg *spec.Registry, names, endpoints []string) ([]Target, error) {
	var out []Target
	if len(names) == 0 && len(endpoints) == 0 {
		for _, n := range reg.StoreNames() {
			if !strings.HasPrefix(n, BrokenPrefix) {
				out = append(out, Target{Name: n, Plugin: n})
			}
		}
		return out, nil
	}
	for _, n := range names {
		if _, err := reg.Store(n); err != nil {
			return nil, fmt.Errorf("apiserver target %q: %w", n, err)
		}
		out = append(out, Target{Name: n, Plugin: n})
	}
	if len(endpoints) > 0 {
		out = append(out, Target{Name: "endpoints", Endpoints: endpoints})
	}
	return out, nil
}

// endpointConfig turns a user's endpoint into a client config: a kubeconfig
// file when it names one, a URL otherwise.
func endpointConfig(ep string) (*rest.Config, error) {
	if st, err := os.Stat(ep); err == nil && !st.IsDir() {
		return clientcmd.BuildConfigFromFlags("", ep)
	}
	if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
		return nil, fmt.Errorf("apiserver endpoint %q is neither a kubeconfig file nor an http(s) URL: %w", ep, spec.ErrInvalid)
	}
	return &rest.Config{Host: ep}, nil
}

func declareAPIServer(ctx context.Context, reg *spec.Registry, t Target, dryRun bool) (func() error, error) {
	if len(t.Endpoints) > 0 {
		cfg, err := endpointConfig(t.Endpoints[0])
		if err != nil {
			return nil, err
		}
		apiserver.Register(apiserver.Target{Name: t.Name, Config: func(context.Context) (*rest.Config, error) { return cfg, nil }})
		return nil, nil
	}
	if _, err := reg.Store(t.Plugin); err != nil {
		return nil, fmt.Errorf("apiserver target %q: %w", t.Name, err)
	}
	srv := &apiserverProcess{plugin: t.Plugin}
	apiserver.Register(apiserver.Target{Name: t.Name, Config: srv.config})
	if dryRun {
		return nil, nil
	}
	return srv.stop, nil
}

// apiserverProcess is `EXE apiserver --store PLUGIN`, started on first use.
type apiserverProcess struct {
	plugin string

	once   sync.Once
	cfg    *rest.Config
	err    error
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	dir    string
}

func (p *apiserverProcess) config(ctx context.Context) (*rest.Config, error) {
	p.once.Do(func() { p.cfg, p.err = p.start(ctx) })
	return p.cfg, p.err
}

func (p *apiserverProcess) start(ctx context.Context) (*rest.Config, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubelab-apiserver-conformance-")
	if err != nil {
		return nil, err
	}
	p.dir = dir
	kcfg := filepath.Join(dir, "kubeconfig")
	// The server outlives this spec's context: it serves the whole run.
	cmd := exec.Command(exe, "apiserver", "--store", p.plugin, "--listen", "127.0.0.1:0",
		"--kubeconfig", kcfg, "--data-dir", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s apiserver: %w", exe, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(apiserverStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return nil, fmt.Errorf("%s apiserver --store %s exited during start", exe, p.plugin)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := os.Stat(kcfg); err != nil {
			continue
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", kcfg)
		if err != nil {
			continue
		}
		hc, err := rest.HTTPClientFor(cfg) // the admin kubeconfig: HTTPS with the server's CA
		if err != nil {
			continue
		}
		resp, err := hc.Get(cfg.Host + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cfg, nil
			}
		}
	}
	return nil, errors.New("the API server did not become ready in time")
}

// stop ends the server, if it was started, and removes its data.
func (p *apiserverProcess) stop() error {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if p.dir != "" {
		return os.RemoveAll(p.dir)
	}
	return nil
}
