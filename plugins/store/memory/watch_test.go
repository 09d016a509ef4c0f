package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kubelab/kubelab/spec"
)

func TestWatchEvents(t *testing.T) {
	s := newStore(t, Options{})
	w := mustWatch(t, s, "/w", 0)
	c := mustCreate(t, s, "/w/k", "v1")
	u := mustUpdate(t, s, "/w/k", "v2")
	d := mustDelete(t, s, "/w/k")
	got := receive(t, w, 3)
	want := []spec.Event{
		{Type: spec.EventCreated, KV: spec.KeyValue{Key: "/w/k", Value: []byte("v1"), CreateRevision: c, ModRevision: c}},
		{Type: spec.EventUpdated, KV: spec.KeyValue{Key: "/w/k", Value: []byte("v2"), CreateRevision: c, ModRevision: u},
			PrevKV: &spec.KeyValue{Key: "/w/k", Value: []byte("v1"), CreateRevision: c, ModRevision: c}},
		{Type: spec.EventDeleted, KV: spec.KeyValue{Key: "/w/k", ModRevision: d},
			PrevKV: &spec.KeyValue{Key: "/w/k", Value: []byte("v2"), CreateRevision: c, ModRevision: u}},
	}
	for i := range want {
		if a, b := eventString(got[i]), eventString(want[i]); a != b {
			t.Errorf("event %d: %s, want %s", i, a, b)
		}
	}
	if got[0].PrevKV != nil {
		t.Errorf("Created event with PrevKV %+v", got[0].PrevKV)
	}
}

func TestWatchStartRevisions(t *testing.T) {
	s := newStore(t, Options{})
	mustCreate(t, s, "/other/x", "")
	r1 := mustCreate(t, s, "/s/a", "1")
	r2 := mustUpdate(t, s, "/s/a", "2")
	r3 := mustCreate(t, s, "/s/b", "3")

	tests := []struct {
		name  string
		after int64
		want  []int64 // revisions of the events, after one more write at r3+1
	}{
		{"zero means from now", 0, []int64{r3 + 1}},
		{"from the beginning", r1 - 1, []int64{r1, r2, r3, r3 + 1}},
		{"from the middle", r1, []int64{r2, r3, r3 + 1}},
		{"from the current revision", r3, []int64{r3 + 1}},
		{"from the future", r3 + 1, nil},
	}
	var ws []spec.Watcher
	for _, tc := range tests {
		ws = append(ws, mustWatch(t, s, "/s", tc.after))
	}
	mustUpdate(t, s, "/s/b", "4")
	mustUpdate(t, s, "/other/x", "") // not under /s
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			for _, ev := range receive(t, ws[i], len(tc.want)) {
				got = append(got, ev.Revision())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("revisions %v, want %v", got, tc.want)
			}
			checkQuiet(t, ws[i])
		})
	}
}

// TestWatchReplayAndLiveUnderLoad opens watches from old revisions while
// writers run, and checks that each sees exactly the history after its start
// revision: in order, no gap, no duplicate, and the same content as written.
func TestWatchReplayAndLiveUnderLoad(t *testing.T) {
	const (
		writers = 4
		perW    = 1500 // enough history for replay to take several chunks
		watches = 6
	)
	s := newStore(t, Options{HistoryRevisions: -1, WatchBuffer: 1 << 20})
	start := mustRevision(t, s)

	var (
		mu      sync.Mutex
		written = map[int64]string{} // revision -> expected event, as eventString renders it
	)
	record := func(rev int64, ev spec.Event) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := written[rev]; dup {
			t.Errorf("two writes at revision %d", rev)
		}
		written[rev] = eventString(ev)
	}

	var wg sync.WaitGroup
	for wi := range writers {
		wg.Go(func() {
			ctx := context.Background()
			key := fmt.Sprintf("/load/w%d/k", wi)
			var cur spec.KeyValue
			for i := range perW {
				val := []byte(fmt.Sprint(i))
				switch {
				case i%10 == 0: // create
					rev, err := s.Create(ctx, key, val, spec.CreateOptions{})
					if err != nil {
						t.Errorf("create: %v", err)
						return
					}
					cur = spec.KeyValue{Key: key, Value: val, CreateRevision: rev, ModRevision: rev}
					record(rev, spec.Event{Type: spec.EventCreated, KV: cur})
				case i%10 == 9: // delete
					prev, rev, err := s.Delete(ctx, key, cur.ModRevision)
					if err != nil {
						t.Errorf("delete: %v", err)
						return
					}
					record(rev, spec.Event{Type: spec.EventDeleted, KV: spec.KeyValue{Key: key, ModRevision: rev}, PrevKV: &prev})
				default: // CAS update
					rev, err := s.Update(ctx, key, val, cur.ModRevision)
					if err != nil {
						t.Errorf("update: %v", err)
						return
					}
					prev := cur
					cur = spec.KeyValue{Key: key, Value: val, CreateRevision: prev.CreateRevision, ModRevision: rev}
					record(rev, spec.Event{Type: spec.EventUpdated, KV: cur, PrevKV: &prev})
				}
			}
		})
	}

	// Open watches at different moments, each from an earlier revision.
	type opened struct {
		w     spec.Watcher
		after int64
	}
	var ws []opened
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for i := range watches {
	wait:
		for mustRevision(t, s) < start+int64(i*writers*perW/watches) {
			select {
			case <-finished: // a writer failed
				break wait
			case <-time.After(time.Millisecond):
			}
		}
		cur := mustRevision(t, s)
		after := start + (cur-start)*int64(i%3)/3 // from the start, a third back, or now
		ws = append(ws, opened{mustWatch(t, s, "/load", after), after})
	}
	<-finished
	end := mustRevision(t, s)
	if t.Failed() {
		return
	}

	for i, o := range ws {
		evs := receive(t, o.w, int(end-o.after))
		for j, ev := range evs {
			rev := o.after + 1 + int64(j)
			if ev.Revision() != rev {
				t.Fatalf("watch %d (after %d): event %d at revision %d, want %d", i, o.after, j, ev.Revision(), rev)
			}
			if got, want := eventString(ev), written[rev]; got != want {
				t.Fatalf("watch %d: revision %d: %s, want %s", i, rev, got, want)
			}
		}
		checkQuiet(t, o.w)
	}
}

func TestSlowWatcherIsCutOff(t *testing.T) {
	const buffer = 8
	s := newStore(t, Options{WatchBuffer: buffer})
	mustCreate(t, s, "/slow/k", "0")
	start := mustRevision(t, s)
	w := mustWatch(t, s, "/slow", 0)

	// Nobody reads w: the writers must still finish.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			if _, err := s.Update(context.Background(), "/slow/k", []byte(fmt.Sprint(i)), 0); err != nil {
				t.Errorf("update: %v", err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("writers blocked by a watcher that does not read")
	}

	evs, err := drain(t, w)
	wantErr(t, "final event", err, spec.ErrWatcherTooSlow)
	if len(evs) > 2*buffer {
		t.Fatalf("slow watcher received %d events, more than its buffer allows", len(evs))
	}
	for i, ev := range evs {
		if ev.Revision() != start+1+int64(i) {
			t.Fatalf("event %d at revision %d, want %d: events before the cut-off skipped", i, ev.Revision(), start+1+int64(i))
		}
	}

	// The watcher resumes from the last revision it received.
	last := start
	if len(evs) > 0 {
		last = evs[len(evs)-1].Revision()
	}
	w2 := mustWatch(t, s, "/slow", last)
	end := mustRevision(t, s)
	rest := receive(t, w2, int(end-last))
	if rest[0].Revision() != last+1 || rest[len(rest)-1].Revision() != end {
		t.Fatalf("resumed watch covers %d..%d, want %d..%d", rest[0].Revision(), rest[len(rest)-1].Revision(), last+1, end)
	}
}

func TestReplayingWatcherFallsBehindCompaction(t *testing.T) {
	// Enough history that the replay takes more chunks than the channel
	// holds, so the watcher is still replaying when compaction overtakes it.
	const history = 3 * replayMaxBatch
	s := newStore(t, Options{HistoryRevisions: history})
	mustCreate(t, s, "/f/k", "0")
	from := mustRevision(t, s) - 1
	for i := range history - 100 {
		mustUpdate(t, s, "/f/k", fmt.Sprint(i))
	}
	w := mustWatch(t, s, "/f", from) // replays, then stalls: nobody reads
	for i := range 2 * history {
		mustUpdate(t, s, "/f/k", fmt.Sprint(i))
	}
	evs, err := drain(t, w)
	wantErr(t, "final event", err, spec.ErrWatcherTooSlow)
	wantErr(t, "final event", err, spec.ErrCompacted)
	for i, ev := range evs {
		if ev.Revision() != from+1+int64(i) {
			t.Fatalf("event %d at revision %d, want %d", i, ev.Revision(), from+1+int64(i))
		}
	}
}

func TestWatchStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newStore(t, Options{})
	w, err := s.Watch(context.Background(), "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/k", "v") // an undelivered event must not matter
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(w.Stop)
	}
	wg.Wait()
	w.Stop()
	evs, err := drain(t, w)
	if err != nil {
		t.Fatalf("Stop produced an error event: %v", err)
	}
	if len(evs) > 1 {
		t.Fatalf("%d events after Stop", len(evs))
	}
	s.mu.RLock()
	n, idx := len(s.watchers), len(s.watchIdx)
	s.mu.RUnlock()
	if n != 0 || idx != 0 {
		t.Fatalf("stopped watch still registered: %d watchers, %d prefixes", n, idx)
	}
}

func TestWatchContextCancel(t *testing.T) {
	tests := []struct {
		name  string
		after func(s *Store) int64
	}{
		{"live", func(*Store) int64 { return 0 }},
		{"replaying", func(*Store) int64 { return 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s := newStore(t, Options{})
			for i := range 10 {
				mustCreate(t, s, fmt.Sprintf("/k/%d", i), "v")
			}
			ctx, cancel := context.WithCancel(context.Background())
			w, err := s.Watch(ctx, "/", tc.after(s))
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			if _, err := drain(t, w); err != nil {
				t.Fatalf("cancel produced an error event: %v", err)
			}
			w.Stop()
		})
	}
}

func TestCloseEndsWatches(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := New(Options{WatchBuffer: 4})
	mustCreate(t, s, "/c/k", "0")
	if _, err := s.Create(context.Background(), "/c/ttl", []byte("x"), spec.CreateOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	live, _ := s.Watch(ctx, "/c", 0)
	stalled, _ := s.Watch(ctx, "/c", 0) // never read before Close
	replaying, _ := s.Watch(ctx, "/c", 1)
	mustUpdate(t, s, "/c/k", "1")
	mustUpdate(t, s, "/c/k", "2")
	receive(t, live, 2)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned: every goroutine of the store has ended, whether or not
	// the consumers read.
	for name, w := range map[string]spec.Watcher{"live": live, "stalled": stalled, "replaying": replaying} {
		_, err := drain(t, w)
		wantErr(t, name+" final event", err, spec.ErrClosed)
		w.Stop()
	}
	_, err := s.Watch(ctx, "/", 0)
	wantErr(t, "Watch after Close", err, spec.ErrClosed)
}

func TestTTLExpiry(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})
	w := mustWatch(t, s, "/t", 0)

	mustCreate(t, s, "/t/keep", "stays")
	c, err := s.Create(ctx, "/t/short", []byte("gone soon"), spec.CreateOptions{TTL: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	evs := receive(t, w, 3)
	exp := evs[2]
	want := spec.Event{Type: spec.EventDeleted, KV: spec.KeyValue{Key: "/t/short", ModRevision: c + 1},
		PrevKV: &spec.KeyValue{Key: "/t/short", Value: []byte("gone soon"), CreateRevision: c, ModRevision: c}}
	if eventString(exp) != eventString(want) {
		t.Fatalf("expiry event %s, want %s", eventString(exp), eventString(want))
	}
	if _, err := s.Get(ctx, "/t/short"); !errors.Is(err, spec.ErrNotFound) {
		t.Fatalf("expired key: Get = %v", err)
	}
	if rev := mustRevision(t, s); rev != exp.Revision() {
		t.Fatalf("revision %d after expiry, want %d", rev, exp.Revision())
	}
	if _, err := s.Get(ctx, "/t/keep"); err != nil {
		t.Fatalf("key without TTL: %v", err)
	}
}

// TestTTLRemovedByUpdateAndDelete drives the expiry directly (no timing):
// only the key whose TTL nothing removed expires.
func TestTTLRemovedByUpdateAndDelete(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})
	ttl := spec.CreateOptions{TTL: time.Hour}
	for _, k := range []string{"/t/updated", "/t/deleted", "/t/recreated", "/t/untouched"} {
		if _, err := s.Create(ctx, k, []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(t, s, "/t/updated", "no ttl now")
	mustDelete(t, s, "/t/deleted")
	mustDelete(t, s, "/t/recreated")
	mustCreate(t, s, "/t/recreated", "no ttl")
	w := mustWatch(t, s, "/t", 0)
	if _, open := s.expire(time.Now().Add(2 * time.Hour)); !open {
		t.Fatal("store closed")
	}
	evs := receive(t, w, 1)
	if evs[0].Type != spec.EventDeleted || evs[0].KV.Key != "/t/untouched" {
		t.Fatalf("expired %s, want only /t/untouched", eventString(evs[0]))
	}
	for _, k := range []string{"/t/updated", "/t/recreated"} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Errorf("%s lost its TTL but expired: %v", k, err)
		}
	}
	s.mu.RLock()
	pending := len(s.ttls)
	s.mu.RUnlock()
	if pending != 0 {
		t.Errorf("%d expiries still pending", pending)
	}
}

// TestTTLBatch expires several keys at one instant, driving the expiry
// directly: they go at one revision, in one batch.
func TestTTLBatch(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})
	for _, k := range []string{"/b/2", "/b/1", "/other/3"} {
		if _, err := s.Create(ctx, k, []byte(k), spec.CreateOptions{TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	w := mustWatch(t, s, "/b", 0)
	before := mustRevision(t, s)
	if _, open := s.expire(time.Now().Add(2 * time.Hour)); !open {
		t.Fatal("store closed")
	}
	if rev := mustRevision(t, s); rev != before+1 {
		t.Fatalf("expiring 3 keys moved the revision from %d to %d, want one step", before, rev)
	}
	select {
	case batch := <-w.Events():
		var got []string
		for _, ev := range batch {
			got = append(got, eventString(ev))
		}
		want := []string{
			fmt.Sprintf("DELETED /b/1@%d prev=%q@%d c%d", before+1, "/b/1", 3, 3),
			fmt.Sprintf("DELETED /b/2@%d prev=%q@%d c%d", before+1, "/b/2", 2, 2),
		}
		if !slices.Equal(got, want) {
			t.Fatalf("batch %q, want %q", got, want)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no expiry batch")
	}
}
