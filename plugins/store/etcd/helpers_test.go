package etcd_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
)

// tmpfsDir returns a new directory removed at the end of the test, on
// /dev/shm when the machine has it: etcd fsyncs every write, which tmpfs
// makes nearly free.
func tmpfsDir(t testing.TB) string {
	t.Helper()
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "kubelab-etcd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testCtx is a context bounded by the test's deadline (or a minute).
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openEmbedded opens a store on an embedded server in a tmpfs data dir and
// closes it at the end of the test.
func openEmbedded(t testing.TB, o etcd.Options) *etcd.Store {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = tmpfsDir(t)
	}
	s, err := etcd.New(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCreate(t testing.TB, s spec.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Create(context.Background(), key, []byte(value), spec.CreateOptions{})
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return rev
}

// nextBatch waits for the watcher's next batch; ok is false when the channel
// was closed.
func nextBatch(t testing.TB, w spec.Watcher) (batch []spec.Event, ok bool) {
	t.Helper()
	select {
	case batch, ok = <-w.Events():
		return batch, ok
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event within 30s")
	}
	return nil, false
}

// nextEvents collects events until it has n of them (failing on an error
// event or a closed channel).
func nextEvents(t testing.TB, w spec.Watcher, n int) []spec.Event {
	t.Helper()
	var evs []spec.Event
	for len(evs) < n {
		batch, ok := nextBatch(t, w)
		if !ok {
			t.Fatalf("watch closed after %d of %d events", len(evs), n)
		}
		for _, e := range batch {
			if e.Type == spec.EventError {
				t.Fatalf("watch error after %d of %d events: %v", len(evs), n, e.Err)
			}
		}
		evs = append(evs, batch...)
	}
	return evs
}
