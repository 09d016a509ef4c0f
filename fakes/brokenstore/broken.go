package brokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubelab/kubelab/spec"
)

// Names of the broken store plugins.
const (
	// IgnoresExpectedRevision: Update ignores expectedModRevision, so every
	// compare-and-swap succeeds (a lost update waiting to happen). Caught
	// by store:cas (also fails store:concurrency and store:linearizable).
	IgnoresExpectedRevision = "broken-ignores-expected-revision"
	// DropsWatchEvents: once a watch has delivered DropAfter events, it
	// silently drops one event in every DropEvery. Light loads never see
	// it. Caught by store:watch-reliable, a Slow spec, only.
	DropsWatchEvents = "broken-drops-watch-events"
	// ListNotAtOneRevision: List ignores opts.Revision and reads every page
	// at the latest revision, so a paged list mixes revisions. Caught by
	// store:list (also fails store:watch-compacted: List at a compacted
	// revision succeeds).
	ListNotAtOneRevision = "broken-list-not-at-one-revision"
	// DuplicatesOnResume: a watch after revision R replays the event at R
	// too (an off-by-one between "after" and "from"). Caught by
	// store:watch-resumable (also fails store:watch-unique and
	// store:watch-compacted).
	DuplicatesOnResume = "broken-duplicates-on-resume"
	// StaleReadsUnderLoad: while other calls are in flight, Get answers
	// from a read cache of up to StaleFor that writes do not invalidate.
	// One call at a time always reads fresh. Its writes take WriteLatency
	// longer, like a replicated store's, so that concurrent calls overlap.
	// Caught by store:linearizable only: porcupine is what sees it.
	StaleReadsUnderLoad = "broken-stale-reads-under-load"
	// WatchSkipsCompacted: a watch from a compacted revision silently starts
	// at the current revision instead of failing with ErrCompacted. Caught
	// by store:watch-compacted only.
	WatchSkipsCompacted = "broken-watch-skips-compacted"
	// LosesLastWriteOnReopen: claims spec.CapStoreDurable, but the last
	// write before Close is gone when the same data directory is opened
	// again. Caught by store:durable only.
	LosesLastWriteOnReopen = "broken-loses-last-write-on-reopen"
	// SameValueUpdateSucceeds: an Update to the value the key already holds
	// is taken for a no-op and succeeds, whatever the expected revision,
	// without writing (a "nothing changed" shortcut taken before the
	// compare). Caught by store:cas (also fails store:concurrency, whose
	// losing increments write the winner's value).
	SameValueUpdateSucceeds = "broken-same-value-update-succeeds"
	// CheckThenWrite: Update compares the expected revision in one round
	// trip and writes unconditionally in a second, CheckLatency later (a
	// compare-and-swap over a store without transactions). One writer at a
	// time never sees it. Caught by store:concurrency (also fails
	// store:linearizable).
	CheckThenWrite = "broken-check-then-write"
)

// Tuning of the bugs.
const (
	// DropAfter is how many events a DropsWatchEvents watch delivers
	// faithfully.
	DropAfter = 1000
	// DropEvery: past DropAfter, one event in DropEvery is dropped.
	DropEvery = 500
	// StaleFor is how old a StaleReadsUnderLoad cached read may be.
	StaleFor = 10 * time.Millisecond
	// WriteLatency is the time a StaleReadsUnderLoad write spends before
	// it reaches the base store.
	WriteLatency = 200 * time.Microsecond
	// CheckLatency is the round trip between a CheckThenWrite compare and
	// its write.
	CheckLatency = 2 * time.Millisecond
)

// Broken is a broken store plugin and the capabilities of the store suite
// whose specs catch it.
type Broken struct {
	// Plugin is the broken store, named with the "broken-" prefix.
	Plugin spec.StorePlugin
	// CaughtBy is the capability whose specs target the bug: at least one
	// of them must fail.
	CaughtBy spec.Capability
	// AlsoFails are other capabilities whose specs may fail too, because
	// the bug shows through them as well. Specs of any other capability
	// must pass.
	AlsoFails []spec.Capability
	// NeedsSlow is true when only specs labelled Slow catch the bug.
	NeedsSlow bool
}

// Catalog returns every broken store built over base (whose factory opens
// the correct store each one wraps), with the capabilities that catch it.
// The broken stores claim base's capabilities; LosesLastWriteOnReopen also
// claims spec.CapStoreDurable, which it fakes when base is not durable.
func Catalog(base spec.StorePlugin) []Broken {
	wrap := func(name, desc string, w func(spec.Store) spec.Store) spec.StorePlugin {
		return spec.StorePlugin{
			Name:         name,
			Description:  desc,
			Capabilities: slices.Clone(base.Capabilities),
			New: func(ctx context.Context, cfg spec.StoreConfig) (spec.Store, error) {
				s, err := base.New(ctx, cfg)
				if err != nil {
					return nil, err
				}
				return w(s), nil
			},
		}
	}
	durableCaps := slices.Clone(base.Capabilities)
	if !durableCaps.Has(spec.CapStoreDurable) {
		durableCaps = append(durableCaps, spec.CapStoreDurable)
	}
	return []Broken{
		{
			Plugin: wrap(IgnoresExpectedRevision, "BROKEN: Update ignores the expected revision (no compare-and-swap)",
				func(s spec.Store) spec.Store { return &ignoresExpectedRevision{s} }),
			CaughtBy: "store:cas",
			// Racing compare-and-swaps all succeed; histories break the model.
			AlsoFails: []spec.Capability{"store:concurrency", "store:linearizable"},
		},
		{
			Plugin: wrap(DropsWatchEvents, "BROKEN: watches drop events once they have delivered many",
				func(s spec.Store) spec.Store { return &dropsWatchEvents{s} }),
			CaughtBy:  "store:watch-reliable",
			NeedsSlow: true,
		},
		{
			Plugin: wrap(ListNotAtOneRevision, "BROKEN: List ignores the requested revision and reads the latest",
				func(s spec.Store) spec.Store { return &listNotAtOneRevision{s} }),
			CaughtBy: "store:list",
			// Reading "at" a compacted revision succeeds too.
			AlsoFails: []spec.Capability{"store:watch-compacted"},
		},
		{
			Plugin: wrap(DuplicatesOnResume, "BROKEN: a watch after revision R replays the event at R again",
				func(s spec.Store) spec.Store { return &duplicatesOnResume{s} }),
			CaughtBy: "store:watch-resumable",
			// Resuming repeats an event; a watch right after a compaction
			// replays the compacted revision itself.
			AlsoFails: []spec.Capability{"store:watch-unique", "store:watch-compacted"},
		},
		{
			Plugin: wrap(StaleReadsUnderLoad, "BROKEN: Get answers from a stale cache while other calls are in flight",
				func(s spec.Store) spec.Store { return &staleReadsUnderLoad{Store: s, cache: map[string]cachedRead{}} }),
			CaughtBy: "store:linearizable",
		},
		{
			Plugin: wrap(WatchSkipsCompacted, "BROKEN: a watch from a compacted revision silently starts at the current one",
				func(s spec.Store) spec.Store { return &watchSkipsCompacted{s} }),
			CaughtBy: "store:watch-compacted",
		},
		{
			Plugin: spec.StorePlugin{
				Name:         LosesLastWriteOnReopen,
				Description:  "BROKEN: claims durability but loses the last write before Close",
				Capabilities: durableCaps,
				New:          openLosesLastWrite(base),
			},
			CaughtBy: spec.CapStoreDurable,
		},
		{
			Plugin: wrap(SameValueUpdateSucceeds, "BROKEN: an Update to the value the key holds succeeds whatever the expected revision",
				func(s spec.Store) spec.Store { return &sameValueUpdateSucceeds{s} }),
			CaughtBy: "store:cas",
			// A racing increment that lost writes the winner's value: it
			// succeeds too.
			AlsoFails: []spec.Capability{"store:concurrency"},
		},
		{
			Plugin: wrap(CheckThenWrite, "BROKEN: Update compares the expected revision, then writes unconditionally",
				func(s spec.Store) spec.Store { return &checkThenWrite{s} }),
			CaughtBy:  "store:concurrency",
			AlsoFails: []spec.Capability{"store:linearizable"},
		},
	}
}

// Plugins returns the broken store plugins of Catalog(base), for a
// registry.
func Plugins(base spec.StorePlugin) []spec.StorePlugin {
	var out []spec.StorePlugin
	for _, b := range Catalog(base) {
		out = append(out, b.Plugin)
	}
	return out
}

// --- broken-ignores-expected-revision ---

type ignoresExpectedRevision struct{ spec.Store }

func (s *ignoresExpectedRevision) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	if expectedModRevision < 0 {
		return s.Store.Update(ctx, key, value, expectedModRevision) // still validates
	}
	return s.Store.Update(ctx, key, value, 0) // BUG: the expected revision is ignored
}

// --- broken-drops-watch-events ---

type dropsWatchEvents struct{ spec.Store }

func (s *dropsWatchEvents) Watch(ctx context.Context, prefix string, afterRevision int64) (spec.Watcher, error) {
	w, err := s.Store.Watch(ctx, prefix, afterRevision)
	if err != nil {
		return nil, err
	}
	delivered := 0
	return forward(w, func(batch []spec.Event) []spec.Event {
		out := batch[:0:0]
		for _, ev := range batch {
			if ev.Type != spec.EventError {
				delivered++
				if delivered > DropAfter && delivered%DropEvery == 0 {
					continue // BUG: the event is lost
				}
			}
			out = append(out, ev)
		}
		return out
	}), nil
}

// --- broken-list-not-at-one-revision ---

type listNotAtOneRevision struct{ spec.Store }

func (s *listNotAtOneRevision) List(ctx context.Context, prefix string, opts spec.ListOptions) (spec.ListResult, error) {
	if opts.Revision > 0 {
		opts.Revision = 0 // BUG: every page is read at the latest revision
	}
	return s.Store.List(ctx, prefix, opts)
}

// --- broken-duplicates-on-resume ---

type duplicatesOnResume struct{ spec.Store }

func (s *duplicatesOnResume) Watch(ctx context.Context, prefix string, afterRevision int64) (spec.Watcher, error) {
	if afterRevision > 1 {
		afterRevision-- // BUG: "after R" treated as "from R"
	}
	return s.Store.Watch(ctx, prefix, afterRevision)
}

// --- broken-stale-reads-under-load ---

type cachedRead struct {
	kv spec.KeyValue
	at time.Time
}

type staleReadsUnderLoad struct {
	spec.Store
	inflight atomic.Int64

	mu    sync.Mutex // guards cache
	cache map[string]cachedRead
}

// enter counts a call in flight until the returned function is called.
func (s *staleReadsUnderLoad) enter() func() {
	s.inflight.Add(1)
	return func() { s.inflight.Add(-1) }
}

func (s *staleReadsUnderLoad) Get(ctx context.Context, key string) (spec.KeyValue, error) {
	defer s.enter()()
	if s.inflight.Load() > 1 {
		s.mu.Lock()
		c, ok := s.cache[key]
		s.mu.Unlock()
		if ok && time.Since(c.at) < StaleFor {
			kv := c.kv // BUG: possibly overwritten or deleted since
			kv.Value = slices.Clone(kv.Value)
			return kv, nil
		}
	}
	kv, err := s.Store.Get(ctx, key)
	if err == nil {
		s.mu.Lock()
		s.cache[key] = cachedRead{kv: spec.KeyValue{Key: kv.Key, Value: slices.Clone(kv.Value), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}, at: time.Now()}
		s.mu.Unlock()
	}
	return kv, err
}

func (s *staleReadsUnderLoad) List(ctx context.Context, prefix string, opts spec.ListOptions) (spec.ListResult, error) {
	defer s.enter()()
	return s.Store.List(ctx, prefix, opts)
}

func (s *staleReadsUnderLoad) Create(ctx context.Context, key string, value []byte, opts spec.CreateOptions) (int64, error) {
	defer s.enter()()
	time.Sleep(WriteLatency)
	return s.Store.Create(ctx, key, value, opts)
}

func (s *staleReadsUnderLoad) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	defer s.enter()()
	time.Sleep(WriteLatency)
	return s.Store.Update(ctx, key, value, expectedModRevision)
}

func (s *staleReadsUnderLoad) Delete(ctx context.Context, key string, expectedModRevision int64) (spec.KeyValue, int64, error) {
	defer s.enter()()
	time.Sleep(WriteLatency)
	return s.Store.Delete(ctx, key, expectedModRevision)
}

// --- broken-watch-skips-compacted ---

type watchSkipsCompacted struct{ spec.Store }

func (s *watchSkipsCompacted) Watch(ctx context.Context, prefix string, afterRevision int64) (spec.Watcher, error) {
	w, err := s.Store.Watch(ctx, prefix, afterRevision)
	if errors.Is(err, spec.ErrCompacted) {
		return s.Store.Watch(ctx, prefix, 0) // BUG: silently skips ahead
	}
	if err != nil {
		return nil, err
	}
	// A store may also report the compaction as the watch's first event.
	r := newRelay()
	go func() {
		defer close(r.done)
		defer close(r.ch)
		cur := w
		defer func() { cur.Stop() }()
		first := true
		for {
			select {
			case batch, ok := <-cur.Events():
				if !ok {
					return
				}
				if first && len(batch) > 0 && batch[0].Type == spec.EventError && errors.Is(batch[0].Err, spec.ErrCompacted) {
					cur.Stop()
					next, err := s.Store.Watch(ctx, prefix, 0) // BUG: silently skips ahead
					if err != nil {
						r.send([]spec.Event{{Type: spec.EventError, Err: err}})
						return
					}
					cur, first = next, false
					continue
				}
				first = false
				if !r.send(batch) {
					return
				}
			case <-r.stopCh:
				return
			}
		}
	}()
	return r, nil
}

// --- broken-same-value-update-succeeds ---

type sameValueUpdateSucceeds struct{ spec.Store }

func (s *sameValueUpdateSucceeds) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	if expectedModRevision > 0 {
		if cur, err := s.Store.Get(ctx, key); err == nil && bytes.Equal(cur.Value, value) {
			return cur.ModRevision, nil // BUG: "nothing to change" skips the compare (and the write)
		}
	}
	return s.Store.Update(ctx, key, value, expectedModRevision)
}

// --- broken-check-then-write ---

type checkThenWrite struct{ spec.Store }

func (s *checkThenWrite) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	if expectedModRevision <= 0 {
		return s.Store.Update(ctx, key, value, expectedModRevision)
	}
	cur, err := s.Store.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if cur.ModRevision != expectedModRevision {
		return 0, fmt.Errorf("key %q is at revision %d, not %d: %w", key, cur.ModRevision, expectedModRevision, spec.ErrConflict)
	}
	time.Sleep(CheckLatency)
	return s.Store.Update(ctx, key, value, 0) // BUG: another write may have come in since the compare
}
