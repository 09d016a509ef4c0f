package cri_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelab/kubelab/plugins/runtime/cri"
	"github.com/kubelab/kubelab/spec"
)

func TestBadOptionsAreInvalid(t *testing.T) {
	p := cri.Plugin()
	if p.Name != "cri" || p.Description == "" {
		t.Errorf("Plugin() = %q %q", p.Name, p.Description)
	}
	for name, cfg := range map[string]spec.RuntimeConfig{
		"no endpoint":        {},
		"unknown option":     {Options: map[string]string{"endpoint": "unix:///x.sock", "colour": "blue"}},
		"tcp endpoint":       {Options: map[string]string{"endpoint": "tcp://127.0.0.1:1"}},
		"bad timeout":        {Options: map[string]string{"endpoint": "unix:///x.sock", "timeout": "soon"}},
		"negative timeout":   {Options: map[string]string{"endpoint": "unix:///x.sock", "timeout": "-1s"}},
		"endpoints disagree": {Endpoint: "unix:///a.sock", Options: map[string]string{"endpoint": "unix:///b.sock"}},
	} {
		_, _, err := p.New(context.Background(), cfg)
		if !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", name, err)
		}
	}
}

// TestNoRuntimeListeningFailsWithinTheTimeout: a socket nobody serves is an
// error after the timeout, not a hang.
func TestNoRuntimeListeningFailsWithinTheTimeout(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	start := time.Now()
	_, _, err := cri.Plugin().New(context.Background(), spec.RuntimeConfig{Endpoint: sock, Options: map[string]string{"timeout": "1s"}})
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("New against nothing = %v, want an error naming the socket", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v to fail", d)
	}
}
