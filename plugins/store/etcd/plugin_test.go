package etcd_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
)

func TestPlugin(t *testing.T) {
	p := etcd.Plugin()
	if p.Name != "etcd" || p.Description == "" || p.New == nil {
		t.Errorf("plugin %+v", p)
	}
	for _, c := range []spec.Capability{spec.CapStoreDurable, spec.CapStoreTTL} {
		if !p.Capabilities.Has(c) {
			t.Errorf("capability %s not claimed", c)
		}
	}
	if err := spec.NewRegistry().RegisterStore(p); err != nil {
		t.Errorf("RegisterStore: %v", err)
	}

	ctx := testCtx(t)
	if _, err := p.New(ctx, spec.StoreConfig{DataDir: tmpfsDir(t), Options: map[string]string{"bogus": "1"}}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("unknown option: %v, want ErrInvalid", err)
	}
	s, err := p.New(ctx, spec.StoreConfig{
		DataDir: tmpfsDir(t),
		Options: map[string]string{etcd.OptionWatchBuffer: "16", etcd.OptionUnsafeNoFsync: "true"},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustCreate(t, s, "/p", "v")
}

func TestOptionsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		options map[string]string
		want    etcd.Options
		invalid bool
	}{
		{name: "none", want: etcd.Options{DataDir: "/d"}},
		{name: "all", options: map[string]string{
			"dial-timeout": "2s", "watch-buffer": "7", "unsafe-no-fsync": "true", "log-level": "warn",
		}, want: etcd.Options{DataDir: "/d", DialTimeout: 2 * time.Second, WatchBuffer: 7, UnsafeNoFsync: true, LogLevel: slog.LevelWarn}},
		{name: "unknown key", options: map[string]string{"data-dir": "/x"}, invalid: true},
		{name: "bad duration", options: map[string]string{"dial-timeout": "soon"}, invalid: true},
		{name: "zero duration", options: map[string]string{"dial-timeout": "0s"}, invalid: true},
		{name: "bad buffer", options: map[string]string{"watch-buffer": "-1"}, invalid: true},
		{name: "bad bool", options: map[string]string{"unsafe-no-fsync": "perhaps"}, invalid: true},
		{name: "bad level", options: map[string]string{"log-level": "loud"}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := etcd.OptionsFromConfig(spec.StoreConfig{DataDir: "/d", Options: tc.options})
			if tc.invalid {
				if !errors.Is(err, spec.ErrInvalid) {
					t.Errorf("got %+v, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got.DataDir != tc.want.DataDir || got.DialTimeout != tc.want.DialTimeout ||
				got.WatchBuffer != tc.want.WatchBuffer || got.UnsafeNoFsync != tc.want.UnsafeNoFsync || got.LogLevel != tc.want.LogLevel {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestEndpointsMode opens a second store as a client of the first one's
// server: both see the same data, and closing the client store leaves the
// server running.
func TestEndpointsMode(t *testing.T) {
	server := openEmbedded(t, etcd.Options{})
	if !server.Embedded() {
		t.Fatal("a store without endpoints is not embedded")
	}
	ctx := testCtx(t)
	client, err := etcd.New(ctx, etcd.Options{Endpoints: server.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	if client.Embedded() {
		t.Error("a store with endpoints claims to be embedded")
	}
	w, err := server.Watch(ctx, "/ep", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	rev := mustCreate(t, client, "/ep/k", "v")
	if evs := nextEvents(t, w, 1); evs[0].Revision() != rev {
		t.Errorf("server-side watch saw %+v, want revision %d", evs, rev)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if kv, err := server.Get(ctx, "/ep/k"); err != nil || kv.ModRevision != rev {
		t.Errorf("after closing the client store: %+v, %v", kv, err)
	}

	// Nothing listening: New fails within the dial timeout, wrapping no
	// sentinel (an infrastructure error).
	_, err = etcd.New(ctx, etcd.Options{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("New on a closed port succeeded")
	}
}
