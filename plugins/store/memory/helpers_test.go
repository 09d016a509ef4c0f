package memory

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kubelab/kubelab/spec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for an event; it only guards against hangs,
// nothing asserts on elapsed time.
const waitTimeout = 10 * time.Second

// newStore opens a store closed at the end of the test.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustCreate(t testing.TB, s *Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Create(context.Background(), key, []byte(value), spec.CreateOptions{})
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return rev
}

func mustUpdate(t testing.TB, s *Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Update(context.Background(), key, []byte(value), 0)
	if err != nil {
		t.Fatalf("Update(%q): %v", key, err)
	}
	return rev
}

func mustDelete(t testing.TB, s *Store, key string) int64 {
	t.Helper()
	_, rev, err := s.Delete(context.Background(), key, 0)
	if err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
	return rev
}

func mustRevision(t testing.TB, s *Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func mustWatch(t testing.TB, s *Store, prefix string, after int64) spec.Watcher {
	t.Helper()
	w, err := s.Watch(t.Context(), prefix, after)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// receive reads batches until n events have arrived, checking the batch
// invariants on the way; an error event or a closed channel fails the test.
func receive(t testing.TB, w spec.Watcher, n int) []spec.Event {
	t.Helper()
	var out []spec.Event
	timeout := time.After(waitTimeout)
	for len(out) < n {
		select {
		case batch, ok := <-w.Events():
			if !ok {
				t.Fatalf("channel closed after %d of %d events", len(out), n)
			}
			checkBatch(t, batch)
			for _, ev := range batch {
				if ev.Type == spec.EventError {
					t.Fatalf("error event after %d of %d events: %v", len(out), n, ev.Err)
				}
			}
			out = append(out, batch...)
		case <-timeout:
			t.Fatalf("timed out after %d of %d events", len(out), n)
		}
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d: the last batch held too many", len(out), n)
	}
	return out
}

// drain reads until the channel is closed and returns the events and the
// error of the final error event, if any.
func drain(t testing.TB, w spec.Watcher) ([]spec.Event, error) {
	t.Helper()
	var out []spec.Event
	timeout := time.After(waitTimeout)
	for {
		select {
		case batch, ok := <-w.Events():
			if !ok {
				return out, nil
			}
			checkBatch(t, batch)
			for _, ev := range batch {
				if ev.Type == spec.EventError {
					if _, ok := <-w.Events(); ok {
						t.Fatalf("channel not closed after the error event")
					}
					return out, ev.Err
				}
			}
			out = append(out, batch...)
		case <-timeout:
			t.Fatalf("channel not closed after %v (%d events)", waitTimeout, len(out))
		}
	}
}

// checkBatch checks that a batch is non-empty, ascending, and that an error
// event comes alone.
func checkBatch(t testing.TB, batch []spec.Event) {
	t.Helper()
	if len(batch) == 0 {
		t.Fatalf("empty batch")
	}
	for i, ev := range batch {
		if ev.Type == spec.EventError {
			if len(batch) != 1 || ev.Err == nil {
				t.Fatalf("error event not alone or without error: %+v", batch)
			}
			continue
		}
		if i > 0 && ev.Revision() < batch[i-1].Revision() {
			t.Fatalf("batch not in revision order: %d after %d", ev.Revision(), batch[i-1].Revision())
		}
	}
}

// checkQuiet fails if the watcher delivers anything (or closes) soon.
func checkQuiet(t testing.TB, w spec.Watcher) {
	t.Helper()
	select {
	case batch, ok := <-w.Events():
		t.Fatalf("unexpected delivery (open=%v): %+v", ok, batch)
	case <-time.After(20 * time.Millisecond):
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, want)
	}
}

// eventString renders an event compactly for comparisons.
func eventString(ev spec.Event) string {
	s := fmt.Sprintf("%s %s@%d", ev.Type, ev.KV.Key, ev.KV.ModRevision)
	if ev.Type != spec.EventDeleted {
		s += fmt.Sprintf("=%q c%d", ev.KV.Value, ev.KV.CreateRevision)
	}
	if ev.PrevKV != nil {
		s += fmt.Sprintf(" prev=%q@%d c%d", ev.PrevKV.Value, ev.PrevKV.ModRevision, ev.PrevKV.CreateRevision)
	}
	return s
}
