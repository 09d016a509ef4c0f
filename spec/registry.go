package spec

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// StoreConfig is what a store plugin is opened with.
type StoreConfig struct {
	// DataDir is a directory the plugin owns for its data, already created.
	// Opening a store again with the same DataDir must find the data again
	// when the plugin declares CapStoreDurable. Plugins that keep no files
	// ignore it.
	DataDir string
	// Endpoints, when set, are the URLs of an external server the plugin
	// connects to instead of running its own (for example an etcd cluster's
	// client URLs). Plugins that cannot connect anywhere reject them with
	// ErrUnsupported.
	Endpoints []string
	// Options are plugin-specific settings as key=value pairs, documented by
	// each plugin. Unknown keys are ErrInvalid.
	Options map[string]string
	// Logger receives the plugin's logs; nil means discard.
	Logger *slog.Logger
}

// StoreFactory opens a Store. The returned store is ready for use; Close
// releases everything the factory started.
type StoreFactory func(ctx context.Context, cfg StoreConfig) (Store, error)

// StorePlugin is a store implementation as registered in a Registry.
type StorePlugin struct {
	// Name is the plugin's registry name, e.g. "etcd".
	Name string
	// Description is one line for `kubelab plugins`.
	Description string
	// Capabilities are the optional capabilities the plugin claims.
	Capabilities Capabilities
	// New opens a store.
	New StoreFactory
}

// SchedulerPlugin is a scheduler policy plugin as registered in a Registry.
type SchedulerPlugin struct {
	// Name is the plugin's registry name, e.g. "NodeResourcesFit".
	Name string
	// Description is one line for `kubelab plugins`.
	Description string
	// New builds the plugin; args are its settings (may be nil).
	New SchedulerPluginFactory
}

// RuntimePlugin is a container runtime as registered in a Registry.
type RuntimePlugin struct {
	// Name is the plugin's registry name, e.g. "process".
	Name string
	// Description is one line for `kubelab plugins`.
	Description string
	// Capabilities are the optional capabilities the plugin claims.
	Capabilities Capabilities
	// New starts or connects to the runtime.
	New RuntimeFactory
	// ImportImages, when set, loads OCI image archives (archive files or
	// image layout directories) into the image store that the runtime keeps
	// under rootDir, the RootDir it will then be started with. It is how a
	// test suite gives a runtime its images without a registry. Nil for a
	// runtime with no local image store (one reached at an endpoint holds
	// its own images).
	ImportImages func(ctx context.Context, rootDir string, archives []string) error
}

// ProxyPlugin is a service proxy data plane as registered in a Registry.
type ProxyPlugin struct {
	// Name is the plugin's registry name, e.g. "nftables".
	Name string
	// Description is one line for `kubelab plugins`.
	Description string
	// Capabilities are the optional capabilities the plugin claims.
	Capabilities Capabilities
	// New builds the proxy.
	New ProxyFactory
}

// Registry is the one explicit list of plugins a program knows, by contract
// and name. Nothing registers itself: a program's main builds a Registry
// (kubelab's built-ins are added by package plugins/builtin) and adds its own
// plugins to it, then hands it to the CLI or the conformance runner.
// Registering a name twice fails loudly.
//
// A Registry is safe for concurrent use.
type Registry struct {
	mu         sync.RWMutex // guards the maps below
	stores     map[string]StorePlugin
	schedulers map[string]SchedulerPlugin
	runtimes   map[string]RuntimePlugin
	proxies    map[string]ProxyPlugin
	profiles   []Profile // in registration order
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{
		stores:     map[string]StorePlugin{},
		schedulers: map[string]SchedulerPlugin{},
		runtimes:   map[string]RuntimePlugin{},
		proxies:    map[string]ProxyPlugin{},
	}
}

func register[P any](r *Registry, m map[string]P, kind, name string, caps Capabilities, hasNew bool, p P) error {
	if name == "" {
		return fmt.Errorf("%s plugin without a name: %w", kind, ErrInvalid)
	}
	if !hasNew {
		return fmt.Errorf("%s plugin %q has no factory: %w", kind, name, ErrInvalid)
	}
	for _, c := range caps {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%s plugin %q: %w", kind, name, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := m[name]; dup {
		return fmt.Errorf("%s plugin %q registered twice: %w", kind, name, ErrAlreadyExists)
	}
	m[name] = p
	return nil
}

func lookup[P any](r *Registry, m map[string]P, kind, name string) (P, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := m[name]
	if !ok {
		var zero P
		return zero, fmt.Errorf("%s plugin %q (known: %v): %w", kind, name, sortedKeys(m), ErrNotFound)
	}
	return p, nil
}

func names[P any](r *Registry, m map[string]P) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(m)
}

func sortedKeys[P any](m map[string]P) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// RegisterStore adds a store plugin. A duplicate name wraps ErrAlreadyExists.
func (r *Registry) RegisterStore(p StorePlugin) error {
	return register(r, r.stores, "store", p.Name, p.Capabilities, p.New != nil, p)
}

// Store returns the store plugin called name, or an error wrapping ErrNotFound.
func (r *Registry) Store(name string) (StorePlugin, error) {
	return lookup(r, r.stores, "store", name)
}

// StoreNames lists the registered store plugins, sorted.
func (r *Registry) StoreNames() []string { return names(r, r.stores) }

// RegisterScheduler adds a scheduler policy plugin.
func (r *Registry) RegisterScheduler(p SchedulerPlugin) error {
	return register(r, r.schedulers, "scheduler", p.Name, nil, p.New != nil, p)
}

// Scheduler returns the scheduler policy plugin called name.
func (r *Registry) Scheduler(name string) (SchedulerPlugin, error) {
	return lookup(r, r.schedulers, "scheduler", name)
}

// SchedulerNames lists the registered scheduler policy plugins, sorted.
func (r *Registry) SchedulerNames() []string { return names(r, r.schedulers) }

// RegisterRuntime adds a container runtime plugin.
func (r *Registry) RegisterRuntime(p RuntimePlugin) error {
	return register(r, r.runtimes, "runtime", p.Name, p.Capabilities, p.New != nil, p)
}

// Runtime returns the runtime plugin called name.
func (r *Registry) Runtime(name string) (RuntimePlugin, error) {
	return lookup(r, r.runtimes, "runtime", name)
}

// RuntimeNames lists the registered runtime plugins, sorted.
func (r *Registry) RuntimeNames() []string { return names(r, r.runtimes) }

// RegisterProxy adds a service proxy plugin.
func (r *Registry) RegisterProxy(p ProxyPlugin) error {
	return register(r, r.proxies, "proxy", p.Name, p.Capabilities, p.New != nil, p)
}

// Proxy returns the proxy plugin called name.
func (r *Registry) Proxy(name string) (ProxyPlugin, error) {
	return lookup(r, r.proxies, "proxy", name)
}

// ProxyNames lists the registered proxy plugins, sorted.
func (r *Registry) ProxyNames() []string { return names(r, r.proxies) }

// RegisterProfile adds a scheduler profile under its SchedulerName, so that
// the CLI and the conformance runner can run it by name. A profile needs a
// name and at least one plugin; a duplicate name wraps ErrAlreadyExists.
// Its plugins are looked up when a scheduler is built from it, not here.
func (r *Registry) RegisterProfile(p Profile) error {
	if p.SchedulerName == "" {
		return fmt.Errorf("scheduler profile without a scheduler name: %w", ErrInvalid)
	}
	if len(p.Plugins) == 0 {
		return fmt.Errorf("scheduler profile %q has no plugins: %w", p.SchedulerName, ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.profiles {
		if q.SchedulerName == p.SchedulerName {
			return fmt.Errorf("scheduler profile %q registered twice: %w", p.SchedulerName, ErrAlreadyExists)
		}
	}
	r.profiles = append(r.profiles, p)
	return nil
}

// Profile returns the scheduler profile whose SchedulerName is name, or an
// error wrapping ErrNotFound.
func (r *Registry) Profile(name string) (Profile, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.profiles {
		if p.SchedulerName == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("scheduler profile %q (known: %v): %w", name, r.profileNamesLocked(), ErrNotFound)
}

// Profiles returns the registered scheduler profiles in registration order
// (the order reports list them in). The caller owns the returned slice, not
// the profiles' plugin lists, which it must not modify.
func (r *Registry) Profiles() []Profile {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Profile(nil), r.profiles...)
}

// ProfileNames lists the registered profiles' scheduler names in
// registration order.
func (r *Registry) ProfileNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.profileNamesLocked()
}

func (r *Registry) profileNamesLocked() []string {
	out := make([]string, 0, len(r.profiles))
	for _, p := range r.profiles {
		out = append(out, p.SchedulerName)
	}
	return out
}

// MustRegister panics if err is not nil. It is meant for a main function's
// list of built-ins, where a duplicate is a programming error.
func MustRegister(err error) {
	if err != nil {
		panic(err)
	}
}
