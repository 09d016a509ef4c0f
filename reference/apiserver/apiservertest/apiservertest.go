// Package apiservertest starts kubelab's API server in-process for tests:
// over a fresh memory store, on an httptest server, with a client-go
// rest.Config pointing at it.
package apiservertest

import (
	"context"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/spec"
)

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
}

// Start starts a server over a new memory store (or cfg.Store when set)
// and registers its shutdown with t.Cleanup. mutate, when non-nil, adjusts
// the config before New.
func Start(t testing.TB, mutate func(*apiserver.Config)) *Server {
	t.Helper()
	cfg := apiserver.Config{}
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.Store == nil {
		st := memory.New(memory.Options{})
		t.Cleanup(func() { _ = st.Close() })
		cfg.Store = st
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
	rc := &rest.Config{Host: hs.URL, QPS: 1000, Burst: 1000}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return &Server{API: api, Store: cfg.Store, HTTP: hs, Config: rc, Client: cs}
}
