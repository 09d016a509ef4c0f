package etcd

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kubelab/kubelab/spec"
)

// TestCloseReleasesEverything opens an embedded store on a temporary data
// dir, uses every kind of call, closes it, and checks that nothing it made
// is left: no goroutine, no listening port, no directory.
func TestCloseReleasesEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// The store's own temporary directory goes under TMPDIR: on tmpfs when
	// the machine has it, for speed.
	tmp := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		var err error
		if tmp, err = os.MkdirTemp("/dev/shm", "kubelab-etcd-leak-"); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp)
	}
	t.Setenv("TMPDIR", tmp)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Fatalf("expected the store's data dir in %s, found %v", tmp, entries)
	}
	rev, err := s.Create(ctx, "/l/a", []byte("v"), spec.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/l/ttl", []byte("v"), spec.CreateOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	stopped, err := s.Watch(ctx, "/l", 0)
	if err != nil {
		t.Fatal(err)
	}
	open, err := s.Watch(ctx, "/l", rev-1)
	if err != nil {
		t.Fatal(err)
	}
	if b := <-open.Events(); len(b) == 0 || b[0].Revision() != rev {
		t.Errorf("watch: %+v", b)
	}
	if _, err := s.Update(ctx, "/l/a", []byte("w"), rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, "/l", spec.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	stopped.Stop()
	ports := s.server.ports

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range open.Events() {
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("left behind in %s: %v", tmp, entries)
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d still taken: %v", p, err)
			continue
		}
		l.Close()
	}
}
