// Package apiservertest starts kubelab's API server in-process for tests:
// over a fresh store (Config.Store, else one from NewStore), on an httptest
// server, with a client-go
// rest.Config pointing at it. Start serves plain HTTP with every request
// allowed; StartSecure serves HTTPS with authentication, RBAC and admission
// (apiserver.NewSecure), as the cluster admin.
package apiservertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/spec"
)

// NewStore makes the store of a server whose config has none; the server's
// cleanup closes it. reference/ never imports a concrete store plugin, so
// the test package that calls Start or StartSecure hands one in, as a main
// does — usually in an init function of one of its _test.go files:
//
//	func init() {
//		apiservertest.NewStore = func() (spec.Store, error) { return memory.New(memory.Options{}), nil }
//	}
//
// Set it before the first Start; it is read without a lock.
var NewStore func() (spec.Store, error)

// newStore returns a store from NewStore, closed at t's cleanup, or fails t.
func newStore(t testing.TB) spec.Store {
	t.Helper()
	if NewStore == nil {
		t.Fatal("apiservertest: no store: set Config.Store, or apiservertest.NewStore in the test package (reference/ does not pick a store plugin)")
	}
	st, err := NewStore()
	if err != nil {
		t.Fatalf("apiservertest.NewStore: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Server is a running test API server.
type Server struct {
	// API is the API server.
	API *apiserver.Server
	// Store is its store.
	Store spec.Store
	// HTTP is the httptest server serving API.Handler().
	HTTP *httptest.Server
	// Config is a client-go config for HTTP (no auth, high QPS).
	Config *rest.Config
	// Client is a typed clientset over Config.
	Client kubernetes.Interface
	// CA is the cluster CA of a server started with StartSecure (nil
	// for Start); ConfigFor issues client certificates with it.
	CA *pki.CA
}

// StartSecure starts a server like Start, but built with
// apiserver.NewSecure over a fresh CA and served over HTTPS: Config and
// Client are the cluster admin's (kubernetes-admin in system:masters).
// mutate, when non-nil, adjusts the config and the security settings before
// NewSecure (sec.CA and sec.SigningKey are already set).
func StartSecure(t testing.TB, mutate func(*apiserver.Config, *apiserver.Security)) *Server {
	t.Helper()
	ca, err := pki.NewCA("kubelab-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apiserver.Config{}
	sec := apiserver.Security{CA: ca, SigningKey: key}
	if mutate != nil {
		mutate(&cfg, &sec)
	}
	if cfg.Store == nil {
		cfg.Store = newStore(t)
	}
	api, err := apiserver.NewSecure(cfg, sec)
	if err != nil {
		t.Fatalf("apiserver.NewSecure: %v", err)
	}
	if err := api.Start(context.Background()); err != nil {
		t.Fatalf("apiserver.Start: %v", err)
	}
	serving, err := ca.IssueServing([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := pki.ServerTLSConfig(serving, ca)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(api.Handler())
	hs.TLS = tlsConfig
	hs.StartTLS()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		api.Close()
		hs.Close()
	})
	s := &Server{API: api, Store: cfg.Store, HTTP: hs, CA: ca}
	s.Config = s.ConfigFor(t, pki.AdminIdentity())
	if s.Client, err = kubernetes.NewForConfig(s.Config); err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return s
}

// ConfigFor returns a client config (high QPS) authenticating as id with a
// fresh client certificate from the server's CA. It needs StartSecure.
func (s *Server) ConfigFor(t testing.TB, id pki.Identity) *rest.Config {
	t.Helper()
	if s.CA == nil {
		t.Fatal("apiservertest: ConfigFor needs a server from StartSecure")
	}
	kp, err := s.CA.IssueClient(id)
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{Host: s.HTTP.URL, QPS: 1000, Burst: 1000, TLSClientConfig: rest.TLSClientConfig{
		CAData: s.CA.CertPEM, CertData: kp.CertPEM, KeyData: kp.KeyPEM,
	}}
}

// ClientFor is a typed clientset over ConfigFor(t, id).
func (s *Server) ClientFor(t testing.TB, id pki.Identity) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(s.ConfigFor(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Start starts a server over cfg.Store, or a new store from NewStore,
// and registers its shutdown with t.Cleanup. mutate, when non-nil, adjusts
// the config before New.
func Start(t testing.TB, mutate func(*apiserver.Config)) *Server {
	t.Helper()
	cfg := apiserver.Config{}
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.Store == nil {
		cfg.Store = newStore(t)
	}
	api, err := apiserver.New(cfg)
	if err != nil {
		t.Fatalf("apiserver.New: %v", err)
	}
	if err := api.Start(context.Background()); err != nil {
		t.Fatalf("apiserver.Start: %v", err)
	}
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		api.Close()
		hs.Close()
	})
	rc := &rest.Config{Host: hs.URL, QPS: 1000, Burst: 1000,
		// A dialer of its own makes client-go build its usual transport (25
		// idle connections per host, as for any HTTPS config) rather than
		// share http.DefaultTransport, which keeps 2 and so dials a new
		// connection for most requests of concurrent clients.
		Dial: (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return &Server{API: api, Store: cfg.Store, HTTP: hs, Config: rc, Client: cs}
}
