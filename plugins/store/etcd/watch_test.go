package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
)

func TestWatchEvents(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	mustCreate(t, s, "/w/before", "old")
	w, err := s.Watch(ctx, "/w", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	c := mustCreate(t, s, "/w/k", "1")
	mustCreate(t, s, "/wx", "outside the directory")
	u, err := s.Update(ctx, "/w/k", []byte("2"), c)
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := s.Delete(ctx, "/w/k", 0)
	if err != nil {
		t.Fatal(err)
	}
	evs := nextEvents(t, w, 3)
	want := []struct {
		typ      spec.EventType
		rev      int64
		value    string
		prevRev  int64
		prevVal  string
		creation int64
	}{
		{spec.EventCreated, c, "1", 0, "", c},
		{spec.EventUpdated, u, "2", c, "1", c},
		{spec.EventDeleted, d, "", u, "2", 0},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, e := range evs {
		wt := want[i]
		if e.Type != wt.typ || e.KV.Key != "/w/k" || e.Revision() != wt.rev || string(e.KV.Value) != wt.value || e.KV.CreateRevision != wt.creation {
			t.Errorf("event %d = %v %+v, want %v at %d", i, e.Type, e.KV, wt.typ, wt.rev)
		}
		switch {
		case wt.prevRev == 0 && e.PrevKV != nil:
			t.Errorf("event %d: PrevKV %+v, want nil", i, e.PrevKV)
		case wt.prevRev != 0 && (e.PrevKV == nil || e.PrevKV.ModRevision != wt.prevRev || string(e.PrevKV.Value) != wt.prevVal):
			t.Errorf("event %d: PrevKV %+v, want mod revision %d value %q", i, e.PrevKV, wt.prevRev, wt.prevVal)
		}
	}

	// Resuming from any revision replays exactly what followed it.
	r, err := s.Watch(ctx, "/w/", c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if evs := nextEvents(t, r, 2); evs[0].Revision() != u || evs[1].Revision() != d {
		t.Errorf("resumed after %d: %+v", c, evs)
	}
}

func TestWatchEnds(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	first := mustCreate(t, s, "/e/1", "v")
	mustCreate(t, s, "/e/2", "v")

	// Stop and ctx cancellation close the channel with no error event.
	stopped, _ := s.Watch(ctx, "/e", 0)
	stopped.Stop()
	stopped.Stop()
	if b, ok := nextBatch(t, stopped); ok {
		t.Errorf("after Stop: batch %+v", b)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancelled, _ := s.Watch(cctx, "/e", 0)
	cancel()
	if b, ok := nextBatch(t, cancelled); ok {
		t.Errorf("after cancel: batch %+v", b)
	}

	// Compaction: a watch from a compacted revision gets one error event.
	cur, _ := s.Revision(ctx)
	if err := s.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	old, err := s.Watch(ctx, "/e", first-1)
	if err != nil {
		t.Fatal(err)
	}
	wantEnd(t, old, spec.ErrCompacted)

	// Close ends open watches with ErrClosed.
	open, _ := s.Watch(ctx, "/e", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantEnd(t, open, spec.ErrClosed)
}

// wantEnd expects one batch with an error event wrapping target, then the
// channel closed.
func wantEnd(t *testing.T, w spec.Watcher, target error) {
	t.Helper()
	b, ok := nextBatch(t, w)
	if !ok || len(b) != 1 || b[0].Type != spec.EventError || !errors.Is(b[0].Err, target) {
		t.Fatalf("got batch %+v (open=%v), want one error event wrapping %v", b, ok, target)
	}
	if b, ok := nextBatch(t, w); ok {
		t.Fatalf("after the error event: batch %+v", b)
	}
}

func TestSlowWatcherIsCutOff(t *testing.T) {
	const buffer = 4
	s := openEmbedded(t, etcd.Options{WatchBuffer: buffer})
	ctx := testCtx(t)
	slow, err := s.Watch(ctx, "/s", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	fast, err := s.Watch(ctx, "/s", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()

	// Every write waits until the fast watcher saw it, so each is its own
	// batch; the slow watcher reads nothing meanwhile.
	const writes = 3 * buffer
	var last int64
	for i := range writes {
		last = mustCreate(t, s, fmt.Sprintf("/s/%d", i), "v")
		if evs := nextEvents(t, fast, 1); evs[0].Revision() != last {
			t.Fatalf("fast watcher: %+v, want revision %d", evs, last)
		}
	}
	var got int64
	for {
		b, ok := nextBatch(t, slow)
		if !ok {
			t.Fatal("slow watcher closed without an error event")
		}
		if b[0].Type == spec.EventError {
			if !errors.Is(b[0].Err, spec.ErrWatcherTooSlow) {
				t.Fatalf("slow watcher ended with %v", b[0].Err)
			}
			break
		}
		for _, e := range b {
			if e.Revision() <= got {
				t.Fatalf("revision %d after %d", e.Revision(), got)
			}
			got = e.Revision()
		}
	}
	if got >= last {
		t.Errorf("slow watcher received everything (up to %d) yet was cut off", got)
	}
	if b, ok := nextBatch(t, slow); ok {
		t.Errorf("after the error event: %+v", b)
	}
	// It may resume from the last revision it received.
	resumed, err := s.Watch(ctx, "/s", got)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Stop()
	if evs := nextEvents(t, resumed, int(last-got)); evs[len(evs)-1].Revision() != last {
		t.Errorf("resumed watch ends at %d, want %d", evs[len(evs)-1].Revision(), last)
	}
}

func TestTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a lease to expire")
	}
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	w, err := s.Watch(ctx, "/ttl", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	kept, err := s.Create(ctx, "/ttl/kept", []byte("v"), spec.CreateOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "/ttl/kept", []byte("updated"), kept); err != nil {
		t.Fatal(err)
	}
	// A longer TTL, granted later: when it has expired, the lease the
	// Update detached from /ttl/kept has long expired too.
	if _, err := s.Create(ctx, "/ttl/expires", []byte("v"), spec.CreateOptions{TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/ttl/expires", []byte("v"), spec.CreateOptions{TTL: time.Second}); !errors.Is(err, spec.ErrAlreadyExists) {
		t.Errorf("Create with TTL of an existing key: %v", err)
	}
	evs := nextEvents(t, w, 3) // two creates and the update
	for evs[len(evs)-1].Type != spec.EventDeleted {
		evs = append(evs, nextEvents(t, w, 1)...)
	}
	if del := evs[len(evs)-1]; del.KV.Key != "/ttl/expires" || del.PrevKV == nil {
		t.Errorf("expiry event %+v", del)
	}
	if _, err := s.Get(ctx, "/ttl/expires"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("expired key: %v", err)
	}
	if kv, err := s.Get(ctx, "/ttl/kept"); err != nil || string(kv.Value) != "updated" {
		t.Errorf("key whose TTL an Update removed: %+v, %v", kv, err)
	}
}
