package memory

import (
	"context"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

func TestPlugin(t *testing.T) {
	p := Plugin()
	if p.Name != "memory" || p.Description == "" || p.New == nil {
		t.Fatalf("Plugin() = %+v", p)
	}
	if !p.Capabilities.Has(spec.CapStoreTTL) || p.Capabilities.Has(spec.CapStoreDurable) {
		t.Fatalf("capabilities %v, want exactly %v", p.Capabilities, spec.CapStoreTTL)
	}
	r := spec.NewRegistry()
	if err := r.RegisterStore(p); err != nil {
		t.Fatalf("RegisterStore: %v", err)
	}
}

func TestPluginFactory(t *testing.T) {
	tests := []struct {
		name        string
		cfg         spec.StoreConfig
		wantErr     error
		wantHistory int64
		wantBuffer  int
	}{
		{"defaults", spec.StoreConfig{}, nil, DefaultHistoryRevisions, DefaultWatchBuffer},
		{"data dir is ignored", spec.StoreConfig{DataDir: t.TempDir()}, nil, DefaultHistoryRevisions, DefaultWatchBuffer},
		{"both options", spec.StoreConfig{Options: map[string]string{"history-revisions": "50", "watch-buffer": "7"}}, nil, 50, 7},
		{"zero means default", spec.StoreConfig{Options: map[string]string{"history-revisions": "0", "watch-buffer": "0"}}, nil, DefaultHistoryRevisions, DefaultWatchBuffer},
		{"unlimited history", spec.StoreConfig{Options: map[string]string{"history-revisions": "-1"}}, nil, -1, DefaultWatchBuffer},
		{"history not a number", spec.StoreConfig{Options: map[string]string{"history-revisions": "lots"}}, spec.ErrInvalid, 0, 0},
		{"buffer negative", spec.StoreConfig{Options: map[string]string{"watch-buffer": "-1"}}, spec.ErrInvalid, 0, 0},
		{"buffer empty", spec.StoreConfig{Options: map[string]string{"watch-buffer": ""}}, spec.ErrInvalid, 0, 0},
		{"unknown key", spec.StoreConfig{Options: map[string]string{"history": "5"}}, spec.ErrInvalid, 0, 0},
		{"endpoints", spec.StoreConfig{Endpoints: []string{"http://127.0.0.1:2379"}}, spec.ErrUnsupported, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Plugin().New(context.Background(), tc.cfg)
			wantErr(t, "New", err, tc.wantErr)
			if tc.wantErr != nil {
				if st != nil {
					t.Fatalf("New returned a store with an error")
				}
				return
			}
			defer st.Close()
			s := st.(*Store)
			if s.opts.HistoryRevisions != tc.wantHistory || s.opts.WatchBuffer != tc.wantBuffer {
				t.Fatalf("options %+v, want history %d buffer %d", s.opts, tc.wantHistory, tc.wantBuffer)
			}
			if _, err := st.Create(context.Background(), "/k", []byte("v"), spec.CreateOptions{}); err != nil {
				t.Fatalf("Create on the new store: %v", err)
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Plugin().New(ctx, spec.StoreConfig{}); err == nil {
		t.Fatalf("New with a cancelled context succeeded")
	}
}
