package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/conformance/scheduler"
	"github.com/kubelab/kubelab/spec"
)

// Scheduler suite target syntax (Options.Targets["scheduler"]).
const (
	// SchedulerNamePrefix starts a target that is a scheduler process of
	// the user's, serving the schedulerName that follows ("name=volcano"):
	// the suite only creates objects and watches. It needs an API server
	// (Options.Endpoints["scheduler"]) that the scheduler watches.
	SchedulerNamePrefix = "name="
	// ExtenderPrefix starts a target that is kubelab's scheduler with the
	// default profile calling the HTTP extender at the URL that follows
	// ("extender=http://127.0.0.1:8888"), with verbs filter and
	// prioritize, weight 1.
	ExtenderPrefix = "extender="
	// defaultSchedulerStore is the store of the API server the child starts
	// when a target names none.
	defaultSchedulerStore = "memory"
)

// Target.Endpoints entries of a scheduler target.
const (
	schedEndpointAPIServer = "apiserver="
	schedEndpointExtender  = "extender="
	schedEndpointName      = "scheduler-name="
	// schedEndpointClaims, "claims=baseline", gives a default baseline
	// target baselineClaims.
	schedEndpointClaims = "claims="
)

// defaultProfile is the scheduler name of the profile the default targets
// run over every store: Kubernetes' default scheduler name.
const defaultProfile = corev1.DefaultSchedulerName

// lookupSchedulerProfile finds a registered profile by scheduler name
// ("-scheduler" may be left out).
func lookupSchedulerProfile(reg *spec.Registry, name string) (spec.Profile, bool) {
	if p, err := reg.Profile(name); err == nil {
		return p, true
	}
	if p, err := reg.Profile(name + "-scheduler"); err == nil {
		return p, true
	}
	return spec.Profile{}, false
}

// baselineProfiles are the registered profiles run over memory by default:
// every one but defaultProfile and the broken ones, in registration order.
func baselineProfiles(reg *spec.Registry) []spec.Profile {
	var out []spec.Profile
	for _, p := range reg.Profiles() {
		if p.SchedulerName != defaultProfile && !strings.HasPrefix(p.SchedulerName, BrokenPrefix) {
			out = append(out, p)
		}
	}
	return out
}

// baselineClaims are the capabilities the research baseline profiles are
// run for by default: those where a scorer other than the default one
// could make a difference (placement under filters, preemption). They
// claim every capability when named explicitly.
var baselineClaims = spec.Capabilities{scheduler.CapResources, scheduler.CapNodeAffinity, scheduler.CapTaints,
	scheduler.CapHostPorts, scheduler.CapTopologySpread, scheduler.CapPodAffinity, scheduler.CapPodAntiAffinity,
	scheduler.CapPreemption}

// SchedulerSuite returns the scheduler suite's entry: conformance/scheduler
// run against a scheduler through the API.
//
// Targets (Options.Targets["scheduler"]):
//   - PROFILE[@STORE]: kubelab's scheduler with a profile of the registry
//     (spec.Registry.RegisterProfile: kubelab's built-in default-scheduler,
//     binpack-scheduler, …, the broken ones, yours), started by the child as `EXE scheduler`
//     against `EXE apiserver --store STORE` (default memory), both started
//     by the child;
//   - extender=URL: kubelab's scheduler with the default profile and the
//     HTTP extender at URL (verbs filter and prioritize);
//   - name=NAME: a scheduler process of the user's serving schedulerName
//     NAME; the suite only creates objects and watches.
//
// Endpoints (Options.Endpoints["scheduler"]): an API server of the user's
// (a kubeconfig file or an http(s) URL). When given, every target uses it
// instead of starting one (so name=NAME targets need it).
//
// With no names, the targets are default-scheduler over every registered
// store whose name does not start with BrokenPrefix, and every other
// registered profile not starting with BrokenPrefix (the baselines) over
// memory (claiming the capabilities their scoring could matter to).
func SchedulerSuite() Suite {
	return Suite{
		Name:         "scheduler",
		Capabilities: scheduler.Capabilities(),
		Targets:      schedulerTargets,
		Declare:      declareScheduler,
		Claims:       schedulerClaims,
	}
}

func schedulerTargets(reg *spec.Registry, names, endpoints []string) ([]Target, error) {
	api, err := apiServerEndpoint("scheduler", schedEndpointAPIServer, endpoints)
	if err != nil {
		return nil, err
	}
	builtin := func(profile, store string) (Target, error) {
		if _, ok := lookupSchedulerProfile(reg, profile); !ok {
			return Target{}, fmt.Errorf("scheduler target %q: no such profile (registered: %s; or %sURL, %sNAME): %w",
				profile, strings.Join(reg.ProfileNames(), ", "), ExtenderPrefix, SchedulerNamePrefix, spec.ErrNotFound)
		}
		if api != nil {
			return Target{Name: profile + "@endpoints", Plugin: profile, Endpoints: api}, nil
		}
		if _, err := reg.Store(store); err != nil {
			return Target{}, fmt.Errorf("scheduler target %s@%s: %w", profile, store, err)
		}
		return Target{Name: profile + "@" + store, Plugin: profile, Server: store}, nil
	}
	var out []Target
	if len(names) == 0 {
		for _, s := range reg.StoreNames() {
			if strings.HasPrefix(s, BrokenPrefix) {
				continue
			}
			t, err := builtin(defaultProfile, s)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			if api != nil {
				break
			}
		}
		for _, p := range baselineProfiles(reg) {
			t, err := builtin(p.SchedulerName, defaultSchedulerStore)
			if err != nil {
				return nil, err
			}
			t.Endpoints = append(t.Endpoints, schedEndpointClaims+"baseline")
			out = append(out, t)
		}
		return out, nil
	}
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, SchedulerNamePrefix):
			name := strings.TrimPrefix(n, SchedulerNamePrefix)
			if name == "" {
				return nil, fmt.Errorf("scheduler target %q: empty scheduler name: %w", n, spec.ErrInvalid)
			}
			if api == nil {
				return nil, fmt.Errorf("scheduler target %q: an external scheduler needs the API server it watches (--endpoints scheduler=KUBECONFIG): %w", n, spec.ErrInvalid)
			}
			out = append(out, Target{Name: "external:" + name, Endpoints: append(slices.Clone(api), schedEndpointName+name)})
		case strings.HasPrefix(n, ExtenderPrefix):
			url := strings.TrimPrefix(n, ExtenderPrefix)
			if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
				return nil, fmt.Errorf("scheduler target %q: the extender URL must be http(s): %w", n, spec.ErrInvalid)
			}
			t, err := builtin(defaultProfile, defaultSchedulerStore)
			if err != nil {
				return nil, err
			}
			t.Name = defaultProfile + "+extender@" + strings.TrimPrefix(t.Name, defaultProfile+"@")
			t.Endpoints = append(t.Endpoints, schedEndpointExtender+url)
			out = append(out, t)
		default:
			profile, store, _ := strings.Cut(n, "@")
			if store == "" {
				store = defaultSchedulerStore
			}
			t, err := builtin(profile, store)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// schedEndpoint returns the value of t's endpoint entry with prefix.
func schedEndpoint(t Target, prefix string) string {
	for _, e := range t.Endpoints {
		if v, ok := strings.CutPrefix(e, prefix); ok {
			return v
		}
	}
	return ""
}

func schedulerClaims(_ *spec.Registry, t Target) spec.Capabilities {
	if schedEndpoint(t, schedEndpointClaims) == "baseline" {
		return baselineClaims
	}
	return scheduler.Capabilities()
}

func declareScheduler(ctx context.Context, reg *spec.Registry, t Target, dryRun bool) (func() error, error) {
	claims := schedulerClaims(reg, t)
	if name := schedEndpoint(t, schedEndpointName); name != "" {
		cfg, err := endpointConfig(schedEndpoint(t, schedEndpointAPIServer))
		if err != nil {
			return nil, err
		}
		scheduler.Register(scheduler.Target{Name: t.Name, SchedulerName: name, Claims: claims,
			Config: func(context.Context) (*rest.Config, error) { return cfg, nil }})
		return nil, nil
	}
	profile, ok := lookupSchedulerProfile(reg, t.Plugin)
	if !ok {
		return nil, fmt.Errorf("scheduler target %q: no such profile %q: %w", t.Name, t.Plugin, spec.ErrNotFound)
	}
	p := &schedulerProcess{profile: profile, extender: schedEndpoint(t, schedEndpointExtender)}
	if ep := schedEndpoint(t, schedEndpointAPIServer); ep != "" {
		cfg, err := endpointConfig(ep)
		if err != nil {
			return nil, err
		}
		p.apiConfig = func(context.Context) (*rest.Config, error) { return cfg, nil }
		if st, err := os.Stat(ep); err == nil && !st.IsDir() {
			p.kubeconfig = ep
		} else {
			p.server = ep
		}
	} else {
		if _, err := reg.Store(t.Server); err != nil {
			return nil, fmt.Errorf("scheduler target %q: %w", t.Name, err)
		}
		p.api = &apiserverProcess{plugin: t.Server}
		p.apiConfig = p.api.config
	}
	scheduler.Register(scheduler.Target{Name: t.Name, SchedulerName: profile.SchedulerName, Claims: claims, Config: p.config})
	if dryRun {
		return nil, nil
	}
	return p.stop, nil
}

// schedulerStartWait is how long a scheduler process must stay up before
// the first spec runs.
const schedulerStartWait = 2 * time.Second

// schedulerProcess is `EXE scheduler --config FILE` with one profile (and
// an extender), against the API server api started by the child or one of
// the user's, started on first use.
type schedulerProcess struct {
	profile  spec.Profile
	extender string

	api        *apiserverProcess // nil with an API server of the user's
	apiConfig  func(context.Context) (*rest.Config, error)
	kubeconfig string // the user's kubeconfig, or
	server     string // the user's API server URL

	once   sync.Once
	cfg    *rest.Config
	err    error
	cmd    *exec.Cmd
	exited chan struct{}
	dir    string
}

func (p *schedulerProcess) config(ctx context.Context) (*rest.Config, error) {
	p.once.Do(func() { p.cfg, p.err = p.start(ctx) })
	return p.cfg, p.err
}

// fileConfig is the scheduler config file for p (reference/scheduler's
// FileConfig, as JSON, which is YAML).
func (p *schedulerProcess) fileConfig() ([]byte, error) {
	type plugin struct {
		Name   string            `json:"name"`
		Weight int64             `json:"weight,omitempty"`
		Args   map[string]string `json:"args,omitempty"`
	}
	type profile struct {
		SchedulerName            string   `json:"schedulerName"`
		PercentageOfNodesToScore int32    `json:"percentageOfNodesToScore,omitempty"`
		Plugins                  []plugin `json:"plugins"`
	}
	type extender struct {
		URLPrefix      string `json:"urlPrefix"`
		FilterVerb     string `json:"filterVerb"`
		PrioritizeVerb string `json:"prioritizeVerb"`
		Weight         int64  `json:"weight"`
	}
	type config struct {
		Profiles  []profile  `json:"profiles"`
		Extenders []extender `json:"extenders,omitempty"`
	}
	pr := profile{SchedulerName: p.profile.SchedulerName, PercentageOfNodesToScore: p.profile.PercentageOfNodesToScore}
	for _, w := range p.profile.Plugins {
		pr.Plugins = append(pr.Plugins, plugin{Name: w.Name, Weight: w.Weight, Args: w.Args})
	}
	c := config{Profiles: []profile{pr}}
	if p.extender != "" {
		c.Extenders = []extender{{URLPrefix: p.extender, FilterVerb: "filter", PrioritizeVerb: "prioritize", Weight: 1}}
	}
	return json.MarshalIndent(c, "", "  ")
}

func (p *schedulerProcess) start(ctx context.Context) (*rest.Config, error) {
	cfg, err := p.apiConfig(ctx)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubelab-scheduler-conformance-")
	if err != nil {
		return nil, err
	}
	p.dir = dir
	data, err := p.fileConfig()
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "scheduler.yaml")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		return nil, err
	}
	args := []string{"scheduler", "--config", cfgFile, "--leader-elect=false", "--listen", ""}
	switch {
	case p.api != nil:
		args = append(args, "--kubeconfig", filepath.Join(p.api.dir, "kubeconfig"))
	case p.kubeconfig != "":
		args = append(args, "--kubeconfig", p.kubeconfig)
	default:
		kcfg := filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kcfg, []byte(urlKubeconfig(p.server)), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--kubeconfig", kcfg)
	}
	// The scheduler outlives this spec's context: it serves the whole run.
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s scheduler: %w", exe, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
		return nil, fmt.Errorf("%s %s exited during start", exe, strings.Join(args, " "))
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(schedulerStartWait):
	}
	return cfg, nil
}

// urlKubeconfig is a kubeconfig for an API server URL without credentials.
func urlKubeconfig(server string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {}}]
current-context: c
`, server)
}

// stop ends the scheduler and the API server, if started.
func (p *schedulerProcess) stop() error {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	var err error
	if p.api != nil {
		err = p.api.stop()
	}
	if p.dir != "" {
		if rerr := os.RemoveAll(p.dir); err == nil {
			err = rerr
		}
	}
	return err
}
