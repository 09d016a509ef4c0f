package etcdserver_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kubelab/kubelab/conformance/etcdserver"
	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startServer(t *testing.T) *etcdserver.Server {
	t.Helper()
	if _, err := os.Stat(etcdserver.DefaultBinary); err != nil {
		t.Skipf("no etcd server binary: %v (Debian package etcd-server)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdserver.Start(ctx, etcdserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// TestPluginAgainstServer runs the etcd store plugin in endpoints mode
// against a real etcd process: the largest value fits, and writes, reads
// and watches work.
func TestPluginAgainstServer(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := etcd.Plugin().New(ctx, spec.StoreConfig{Endpoints: srv.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	w, err := s.Watch(ctx, "/srv", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	big := bytes.Repeat([]byte{'v'}, spec.MaxValueSize)
	rev, err := s.Create(ctx, "/srv/big", big, spec.CreateOptions{})
	if err != nil {
		t.Fatalf("Create of a %d-byte value: %v", len(big), err)
	}
	if kv, err := s.Get(ctx, "/srv/big"); err != nil || !bytes.Equal(kv.Value, big) || kv.ModRevision != rev {
		t.Errorf("Get: %d bytes at %d, %v", len(kv.Value), kv.ModRevision, err)
	}
	if _, err := s.Update(ctx, "/srv/big", []byte("small"), rev-1); !errors.Is(err, spec.ErrConflict) {
		t.Errorf("stale Update: %v, want ErrConflict", err)
	}
	select {
	case b := <-w.Events():
		if len(b) != 1 || b[0].Type != spec.EventCreated || b[0].Revision() != rev {
			t.Errorf("watch: %+v", b)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
}

// TestStopReleasesEverything checks that Stop kills the process, frees its
// port and removes its directory, and is idempotent.
func TestStopReleasesEverything(t *testing.T) {
	srv := startServer(t)
	u, err := url.Parse(srv.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := srv.Pid(), srv.DataDir()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d after Stop: kill -0 says %v", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir %s after Stop: %v", dir, err)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Errorf("client port after Stop: %v", err)
	} else {
		l.Close()
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := etcdserver.Start(context.Background(), etcdserver.Options{Binary: "/nonexistent/etcd"})
	if !errors.Is(err, etcdserver.ErrNoBinary) {
		t.Errorf("got %v, want ErrNoBinary", err)
	}
}

// TestFailedStartExplains checks that a server that cannot start is reported
// with its own output, and leaves nothing behind.
func TestFailedStartExplains(t *testing.T) {
	if _, err := os.Stat(etcdserver.DefaultBinary); err != nil {
		t.Skipf("no etcd server binary: %v", err)
	}
	base := t.TempDir()
	_, err := etcdserver.Start(context.Background(), etcdserver.Options{BaseDir: base, Args: []string{"--no-such-flag"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("got %v, want an error quoting etcd's complaint", err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
