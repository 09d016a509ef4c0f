// Package apiserver is kubelab's Kubernetes API server: the REST API of the
// real k8s.io/api types over any spec.Store, so that kubectl, client-go
// programs and third-party components work against it unchanged.
//
// The resources, their storage, the watch cache and the service allocators
// live in package registry; this package is the HTTP face: routing (by
// upstream's RequestInfo), decoding with field validation, the verbs, watch
// streams, patches, discovery, server-side tables, probes and limits.
//
// Request path, outermost first:
//
//	panic recovery → max in-flight (429) → RequestInfo → Authentication →
//	Authorization → per-request timeout → body limit (413) → handler →
//	admission (Admit, Validate) inside the registry's write path
//
// Authentication, Authorization and Admission are hooks (Config); with New
// every request is allowed and admission runs only the Config.Admission
// plugins, NewSecure fills them with client-certificate and token
// authentication, RBAC and the built-in admission plugins (see Security).
// Admission is package admission's one Chain, run by the registry. The
// authentication filter is expected to put the user in the request context
// with k8s.io/apiserver/pkg/endpoints/request.WithUser; the request's
// *request.RequestInfo is already there (request.RequestInfoFrom).
package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/registry"
	"github.com/kubelab/kubelab/spec"
)

// Defaults of Config.
const (
	// DefaultServiceClusterIPRange is upstream kubeadm's default.
	DefaultServiceClusterIPRange = "10.96.0.0/12"
	// DefaultMaxRequestBodyBytes is upstream's limit on request bodies.
	DefaultMaxRequestBodyBytes = 3 << 20
	// DefaultMaxInFlight bounds concurrent non-watch requests.
	DefaultMaxInFlight = 400
	// DefaultRequestTimeout bounds non-watch requests.
	DefaultRequestTimeout = 60 * time.Second
	// DefaultWatchTimeout bounds watches without timeoutSeconds.
	DefaultWatchTimeout = 30 * time.Minute
)

// Config configures a Server. Only Store is required.
type Config struct {
	// Store holds every object. The server does not close it.
	Store spec.Store
	// ServiceClusterIPRange is the CIDR Service ClusterIPs come from;
	// "" means DefaultServiceClusterIPRange.
	ServiceClusterIPRange string
	// Authentication wraps the handler after RequestInfo is in the
	// context; nil lets everyone in. It should reject with 401 and put the
	// user in the context (request.WithUser).
	Authentication func(http.Handler) http.Handler
	// Authorization wraps the handler after Authentication; nil allows
	// everything. It should reject with 403.
	Authorization func(http.Handler) http.Handler
	// Admission are admission plugins every write request passes through,
	// in order (all mutating steps, then all validating ones); none admits
	// everything. NewSecure runs the built-in plugins after them. Two
	// plugins with the same name are an error.
	Admission []admission.Plugin
	// MaxRequestBodyBytes; 0 means DefaultMaxRequestBodyBytes.
	MaxRequestBodyBytes int64
	// MaxInFlight bounds concurrent non-watch requests (429 beyond);
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
	// RequestTimeout bounds non-watch requests; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// WatchTimeout bounds watches that set no timeoutSeconds; 0 means
	// DefaultWatchTimeout.
	WatchTimeout time.Duration
	// Cache configures the watch cache.
	Cache registry.CacheOptions
	// Resources is the resource table; nil means registry.Builtin().
	Resources []*registry.Resource
	// Version is what /version reports; zero means kubelab's.
	Version version.Info
	// Logger receives the server's logs; nil discards.
	Logger *slog.Logger
	// Bootstrap are objects Start creates when missing, after the default
	// namespaces and without admission (AlreadyExists is fine). Each must
	// have its TypeMeta set. NewSecure sets the RBAC bootstrap policy and
	// the system priority classes.
	Bootstrap []kruntime.Object
	// KubeletTLS is how the server dials kubelets for pods/log, exec,
	// attach, portforward and nodes/proxy: its client certificate (e.g.
	// pki.KubeletClientIdentity's) and, when RootCAs is set, the CA the
	// kubelets' serving certificates must chain to. nil, or no RootCAs,
	// means the kubelet's certificate is not verified, as kube-apiserver
	// without --kubelet-certificate-authority.
	KubeletTLS *tls.Config
}

// Server is the API server. Build it with New, Start it, serve Handler, and
// Close it.
type Server struct {
	cfg       Config
	table     *registry.Table
	storage   *registry.Storage
	cache     *registry.Cache
	alloc     *registry.ServiceAllocator
	admission *admission.Chain // nil admits everything
	log       *slog.Logger
	infos     *request.RequestInfoFactory
	inflight  chan struct{}
	handler   http.Handler
	oapi      serverOpenAPI // OpenAPI documents and field managers, built on first use (openapi.go)

	// Set by NewSecure; nil on an open server.
	authenticator authenticator.Request
	authorizer    authz.Authorizer
	rules         authorizer.RuleResolver
	saTokens      *authn.ServiceAccountTokens

	kubeletOnce sync.Once
	kubeletRT   *http.Transport // built on first use (kubeletproxy.go)
}

// New builds a Server over cfg.Store. It does not touch the store yet.
func New(cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.complete(cfg.Admission); err != nil {
		return nil, err
	}
	return s, nil
}

// newServer builds the registry (table, watch cache, storage, allocator) of
// a Server over cfg.Store; complete then adds admission and the handler,
// which may read through the registry (NewSecure builds its
// authentication, RBAC and admission plugins in between).
func newServer(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("apiserver: Config.Store is nil")
	}
	if cfg.ServiceClusterIPRange == "" {
		cfg.ServiceClusterIPRange = DefaultServiceClusterIPRange
	}
	if cfg.MaxRequestBodyBytes <= 0 {
		cfg.MaxRequestBodyBytes = DefaultMaxRequestBodyBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.WatchTimeout <= 0 {
		cfg.WatchTimeout = DefaultWatchTimeout
	}
	if cfg.Version.GitVersion == "" {
		cfg.Version = version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2-kubelab", Platform: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version()}
	}
	res := cfg.Resources
	if res == nil {
		res = registry.Builtin()
	}
	table, err := registry.NewTable(res)
	if err != nil {
		return nil, err
	}
	alloc, err := registry.NewServiceAllocator(cfg.ServiceClusterIPRange)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := registry.NewCache(cfg.Store, table, withLogger(cfg.Cache, log))
	s := &Server{
		cfg: cfg, table: table, cache: cache, alloc: alloc, log: log,
		storage: &registry.Storage{Store: cfg.Store, Table: table, Cache: cache, Hooks: alloc.Hooks()},
		infos: &request.RequestInfoFactory{
			APIPrefixes:          sets.NewString("api", "apis"),
			GrouplessAPIPrefixes: sets.NewString("api"),
		},
		inflight: make(chan struct{}, cfg.MaxInFlight),
	}
	return s, nil
}

// complete builds the admission chain of plugins and the HTTP handler.
func (s *Server) complete(plugins []admission.Plugin) error {
	if len(plugins) > 0 {
		chain, err := admission.NewChain(plugins...)
		if err != nil {
			return fmt.Errorf("apiserver: %w", err)
		}
		s.admission = chain
	}
	s.handler = s.buildChain()
	return nil
}

func withLogger(o registry.CacheOptions, l *slog.Logger) registry.CacheOptions {
	if o.Logger == nil {
		o.Logger = l
	}
	return o
}

// Start loads the watch cache, rebuilds the service allocations and creates
// the default namespaces (default, kube-system, kube-public,
// kube-node-lease) and the default/kubernetes Service when missing.
func (s *Server) Start(ctx context.Context) error {
	if err := s.cache.Start(ctx); err != nil {
		return fmt.Errorf("apiserver: starting the watch cache: %w", err)
	}
	svcs, _ := s.cache.List(s.table.Lookup("", "v1", "services"), registry.Filter{})
	s.alloc.Rebuild(svcs)
	nsRes := s.table.Lookup("", "v1", "namespaces")
	for _, name := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		_, err := s.storage.Create(ctx, nsRes, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, registry.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			s.cache.Stop()
			return fmt.Errorf("apiserver: creating namespace %q: %w", name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: s.alloc.KubernetesServiceIP().String(),
			Ports:     []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(6443)}},
		},
	}
	_, err := s.storage.Create(ctx, s.table.Lookup("", "v1", "services"), metav1.NamespaceDefault, svc, registry.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		s.cache.Stop()
		return fmt.Errorf("apiserver: creating the kubernetes service: %w", err)
	}
	if err := s.createBootstrap(ctx); err != nil {
		s.cache.Stop()
		return err
	}
	// Once the cache holds the bootstrap writes, a watch from before the
	// server's start is too old (410), as upstream.
	if err := s.cache.WaitFresh(ctx, 0); err != nil {
		s.cache.Stop()
		return fmt.Errorf("apiserver: syncing the watch cache: %w", err)
	}
	s.cache.ForgetHistory()
	return nil
}

// Close stops the watch cache, which ends every open watch. It does not
// close the store.
func (s *Server) Close() { s.cache.Stop() }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Table returns the server's resource table.
func (s *Server) Table() *registry.Table { return s.table }

// Storage returns the server's storage layer (for in-process components).
func (s *Server) Storage() *registry.Storage { return s.storage }

// Allocator returns the Service IP and NodePort allocator.
func (s *Server) Allocator() *registry.ServiceAllocator { return s.alloc }

func (s *Server) buildChain() http.Handler {
	var h http.Handler = http.HandlerFunc(s.route)
	h = s.withTimeout(h)
	if s.cfg.Authorization != nil {
		h = s.cfg.Authorization(h)
	}
	if s.cfg.Authentication != nil {
		h = s.cfg.Authentication(h)
	}
	h = s.withRequestInfo(h)
	h = s.withMaxInFlight(h)
	return s.withRecovery(h)
}

func (s *Server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("apiserver: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, apierrors.NewInternalError(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := s.infos.NewRequestInfo(r)
		if err != nil {
			writeError(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		next.ServeHTTP(w, r.WithContext(request.WithRequestInfo(r.Context(), info)))
	})
}

// isLongRunning: watches, pods/log, exec, attach, portforward and
// nodes/proxy are not bounded by in-flight limits or timeouts (upstream's
// long-running verbs and subresources).
func isLongRunning(r *http.Request) bool {
	q := r.URL.Query().Get("watch")
	if r.Method == http.MethodGet && (q == "true" || q == "1" || strings.Contains(r.URL.Path, "/watch/")) {
		return true
	}
	return isKubeletSubresource(r.URL.Path)
}

// isKubeletSubresource reports whether path is /api/v1/.../pods/NAME/
// {log,exec,attach,portforward} or /api/v1/nodes/NAME/proxy[/...].
func isKubeletSubresource(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return false
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) >= 3 && parts[0] == "nodes" && parts[2] == "proxy" {
		return true
	}
	if len(parts) == 5 && parts[0] == "namespaces" && parts[2] == "pods" {
		switch parts[4] {
		case "log", "exec", "attach", "portforward":
			return true
		}
	}
	return false
}

func (s *Server) withMaxInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isLongRunning(r) {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case s.inflight <- struct{}{}:
			defer func() { <-s.inflight }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, apierrors.NewTooManyRequests("Too many requests, please try again later.", 1))
		}
	})
}

func (s *Server) withTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isLongRunning(r) {
			next.ServeHTTP(w, r)
			return
		}
		d := s.cfg.RequestTimeout
		if t := r.URL.Query().Get("timeout"); t != "" {
			if pd, err := time.ParseDuration(t); err == nil && pd > 0 && pd < d {
				d = pd
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBodyBytes)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
