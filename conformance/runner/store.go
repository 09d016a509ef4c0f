package runner

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kubelab/kubelab/conformance/store"
	"github.com/kubelab/kubelab/spec"
)

// Store suite targets that are not registry names.
const (
	// TargetEtcdServer is the store suite's pseudo-target: the child starts a
	// real etcd (Debian's /usr/bin/etcd, through conformance/etcdserver) for
	// the run and tests the "etcd" plugin in endpoints mode against it.
	TargetEtcdServer = "etcd-server"
	// EndpointsSuffix ends the name of a target that runs a plugin in
	// endpoints mode against a server of the user's: "etcd@endpoints".
	EndpointsSuffix = "@endpoints"
	// BrokenPrefix starts the names of deliberately broken plugins, which
	// are never default targets.
	BrokenPrefix = "broken-"
)

// etcdPlugin is the store plugin that talks to an etcd server.
const etcdPlugin = "etcd"

// etcdStartTimeout bounds how long a child waits for its etcd server.
const etcdStartTimeout = 2 * time.Minute

// StoreSuite returns the store suite's entry: conformance/store run against
// store plugins.
//
// Targets: each name is a registered store plugin, TargetEtcdServer, or
// "PLUGIN@endpoints" (PLUGIN in endpoints mode; needs endpoints). Endpoints
// given without any "@endpoints" name add the target "etcd@endpoints". With
// neither names nor endpoints the targets are every registered store plugin
// whose name does not start with BrokenPrefix, plus TargetEtcdServer when
// /usr/bin/etcd exists and an "etcd" plugin is registered.
func StoreSuite() Suite {
	caps := store.Capabilities()
	return Suite{
		Name:         "store",
		Capabilities: caps,
		Targets:      storeTargets,
		Declare:      declareStore,
		Claims: func(reg *spec.Registry, t Target) spec.Capabilities {
			p, err := reg.Store(t.Plugin)
			if err != nil {
				return nil
			}
			return p.Capabilities
		},
	}
}

func storeTargets(reg *spec.Registry, names, endpoints []string) ([]Target, error) {
	if len(names) == 0 && len(endpoints) == 0 {
		var out []Target
		for _, n := range reg.StoreNames() {
			if !strings.HasPrefix(n, BrokenPrefix) {
				out = append(out, Target{Name: n, Plugin: n})
			}
		}
		if _, err := reg.Store(etcdPlugin); err == nil {
			if _, err := os.Stat(etcdBinary); err == nil {
				out = append(out, Target{Name: TargetEtcdServer, Plugin: etcdPlugin, Server: "etcd"})
			}
		}
		return out, nil
	}
	var out []Target
	endpointsUsed := false
	for _, n := range names {
		var t Target
		switch {
		case n == TargetEtcdServer:
			t = Target{Name: n, Plugin: etcdPlugin, Server: "etcd"}
		case strings.HasSuffix(n, EndpointsSuffix):
			if len(endpoints) == 0 {
				return nil, fmt.Errorf("store target %q needs endpoints (--store-endpoints): %w", n, spec.ErrInvalid)
			}
			t = Target{Name: n, Plugin: strings.TrimSuffix(n, EndpointsSuffix), Endpoints: endpoints}
			endpointsUsed = true
		default:
			t = Target{Name: n, Plugin: n}
		}
		if _, err := reg.Store(t.Plugin); err != nil {
			return nil, fmt.Errorf("store target %q: %w", n, err)
		}
		out = append(out, t)
	}
	if len(endpoints) > 0 && !endpointsUsed {
		if _, err := reg.Store(etcdPlugin); err != nil {
			return nil, fmt.Errorf("store endpoints %v: %w", endpoints, err)
		}
		out = append(out, Target{Name: etcdPlugin + EndpointsSuffix, Plugin: etcdPlugin, Endpoints: endpoints})
	}
	return out, nil
}

func declareStore(ctx context.Context, reg *spec.Registry, t Target, dryRun bool) (func() error, error) {
	p, err := reg.Store(t.Plugin)
	if err != nil {
		return nil, fmt.Errorf("store target %q: %w", t.Name, err)
	}
	endpoints := t.Endpoints
	var cleanup func() error
	switch t.Server {
	case "":
	case "etcd":
		if dryRun {
			break
		}
		startCtx, cancel := context.WithTimeout(ctx, etcdStartTimeout)
		eps, stop, err := startEtcdServer(startCtx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("store target %q: starting etcd: %w", t.Name, err)
		}
		endpoints = eps
		cleanup = stop
	default:
		return nil, fmt.Errorf("store target %q: unknown server %q: %w", t.Name, t.Server, spec.ErrInvalid)
	}
	target := store.PluginTarget(p, spec.StoreConfig{Endpoints: endpoints})
	target.Name = t.Name
	store.Register(target)
	return cleanup, nil
}
