package memory

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "memory"

// Defaults of Options.
const (
	// DefaultHistoryRevisions is how many revisions of history a store
	// keeps when Options.HistoryRevisions is 0.
	DefaultHistoryRevisions = 10000
	// DefaultWatchBuffer is how many events a watcher may have pending when
	// Options.WatchBuffer is 0 or less.
	DefaultWatchBuffer = 10000
)

// Options configure a Store. The zero value is a good default.
type Options struct {
	// HistoryRevisions bounds the history: after every write the store
	// compacts itself so that only the last HistoryRevisions revisions stay
	// readable (List at a revision, Watch from a revision); older ones are
	// ErrCompacted, exactly as after an explicit Compact. With a steady
	// write load memory then stays proportional to the number of keys plus
	// HistoryRevisions. 0 means DefaultHistoryRevisions; a negative value
	// keeps all history until an explicit Compact (memory then grows with
	// every write).
	HistoryRevisions int64

	// WatchBuffer is how many events one watcher may have pending
	// (committed but not yet received by its consumer) before it is cut
	// off with a final error event wrapping spec.ErrWatcherTooSlow. A single
	// revision with more events than WatchBuffer is still delivered when
	// nothing else is pending. 0 or less means DefaultWatchBuffer.
	WatchBuffer int

	// Logger receives debug logs (watches ending with an error); nil
	// discards them.
	Logger *slog.Logger
}

// errClosed is returned by every call on a closed store.
var errClosed = fmt.Errorf("memory store: %w", spec.ErrClosed)

// Store is an in-memory, non-durable spec.Store with MVCC history, watch
// and TTL. Create one with New.
//
// Every method is safe for concurrent use and linearizable: one mutex
// serialises writes, and reads observe a consistent revision. Writers never
// wait for watchers. Byte slices passed in are copied; byte slices returned
// (values in KeyValues and events) are fresh copies owned by the caller.
//
// The store starts at revision 1 with an empty key space and compacted
// revision 0; every write increments the revision by one.
type Store struct {
	opts Options // immutable after New, defaults applied

	wg      sync.WaitGroup // counts the expiry goroutine and watch goroutines
	done    chan struct{}  // closed by Close
	ttlWake chan struct{}  // capacity 1: the earliest TTL deadline changed

	mu         sync.RWMutex // guards every field below, and keyHistory, watcher.synced/minRev
	closed     bool
	rev        int64                  // current revision
	compactRev int64                  // revisions below it are compacted
	keys       map[string]*keyHistory // every key with retained history
	index      keyIndex               // the keys of keys, in byte order
	log        eventLog               // every change at compactRev or later
	watchers   map[*watcher]struct{}  // every open watch
	watchIdx   map[string][]*watcher  // synced watchers by prefix
	ttls       ttlHeap                // pending expiries
	ttlRunning bool                   // the expiry goroutine was started
}

var _ spec.Store = (*Store)(nil)

// New returns an empty, open Store configured by opts (see Options for the
// defaults). It starts no goroutine until a key with a TTL is created or a
// watch is opened; Close stops them all.
func New(opts Options) *Store {
	if opts.HistoryRevisions == 0 {
		opts.HistoryRevisions = DefaultHistoryRevisions
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = DefaultWatchBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		opts:     opts,
		done:     make(chan struct{}),
		ttlWake:  make(chan struct{}, 1),
		rev:      1,
		keys:     map[string]*keyHistory{},
		watchers: map[*watcher]struct{}{},
		watchIdx: map[string][]*watcher{},
	}
}

// clone returns a copy of b that is non-nil even when b is empty.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

func kvOf(key string, v *version) spec.KeyValue {
	return spec.KeyValue{Key: key, Value: clone(v.value), CreateRevision: v.create, ModRevision: v.mod}
}

// Get returns the current value of key, or an error wrapping
// spec.ErrNotFound. See spec.Store.
func (s *Store) Get(ctx context.Context, key string) (spec.KeyValue, error) {
	if err := ctx.Err(); err != nil {
		return spec.KeyValue{}, err
	}
	if err := spec.ValidateKey(key); err != nil {
		return spec.KeyValue{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return spec.KeyValue{}, errClosed
	}
	if kh := s.keys[key]; kh != nil {
		if v, ok := kh.current(); ok {
			return kvOf(key, v), nil
		}
	}
	return spec.KeyValue{}, fmt.Errorf("key %q: %w", key, spec.ErrNotFound)
}

// List returns the keys under prefix as of one revision, in byte order, with
// paging. See spec.Store. Values are copied into one allocation shared by
// the page (each item's slice is capped, so appending to one cannot clobber
// another).
func (s *Store) List(ctx context.Context, prefix string, opts spec.ListOptions) (spec.ListResult, error) {
	if err := ctx.Err(); err != nil {
		return spec.ListResult{}, err
	}
	dir, err := spec.DirPrefix(prefix)
	if err != nil {
		return spec.ListResult{}, err
	}
	if err := spec.ValidateListOptions(opts); err != nil {
		return spec.ListResult{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return spec.ListResult{}, errClosed
	}
	rev := opts.Revision
	switch {
	case rev == 0:
		rev = s.rev
	case rev < s.compactRev:
		return spec.ListResult{}, fmt.Errorf("list %q at revision %d (compacted revision %d): %w", prefix, rev, s.compactRev, spec.ErrCompacted)
	case rev > s.rev:
		return spec.ListResult{}, fmt.Errorf("list %q at revision %d (current revision %d): %w", prefix, rev, s.rev, spec.ErrFutureRevision)
	}

	from := dir
	if opts.After >= dir {
		from = opts.After + "\x00" // the least key strictly greater than After
	}
	type hit struct {
		key string
		v   *version
	}
	var hits []hit
	more, size := false, 0
	s.index.Ascend(from, func(kh *keyHistory) bool {
		if !strings.HasPrefix(kh.key, dir) {
			return false
		}
		v, ok := kh.at(rev)
		if !ok {
			return true
		}
		if opts.Limit > 0 && int64(len(hits)) == opts.Limit {
			more = true
			return false
		}
		hits = append(hits, hit{kh.key, v})
		size += len(v.value)
		return true
	})
	res := spec.ListResult{Items: make([]spec.KeyValue, len(hits)), Revision: rev, More: more}
	buf := make([]byte, size)
	for i, h := range hits {
		var val []byte
		val, buf = carve(buf, h.v.value)
		res.Items[i] = spec.KeyValue{Key: h.key, Value: val, CreateRevision: h.v.create, ModRevision: h.v.mod}
	}
	return res, nil
}

// Create writes key if it does not exist (spec.ErrAlreadyExists otherwise)
// and returns the revision of the write. opts.TTL > 0 makes the key expire
// after about that long; a negative TTL is spec.ErrInvalid.
func (s *Store) Create(ctx context.Context, key string, value []byte, opts spec.CreateOptions) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := spec.ValidateKey(key); err != nil {
		return 0, err
	}
	if err := spec.ValidateValue(value); err != nil {
		return 0, err
	}
	if opts.TTL < 0 {
		return 0, fmt.Errorf("key %q: TTL %v is negative: %w", key, opts.TTL, spec.ErrInvalid)
	}
	val := clone(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	kh := s.keys[key]
	if kh != nil {
		if _, ok := kh.current(); ok {
			return 0, fmt.Errorf("key %q: %w", key, spec.ErrAlreadyExists)
		}
	} else {
		kh = &keyHistory{key: strings.Clone(key)}
		s.keys[kh.key] = kh
		s.index.Insert(kh)
	}
	s.rev++
	v := version{value: val, create: s.rev, mod: s.rev}
	kh.versions = append(kh.versions, v)
	if opts.TTL > 0 {
		s.setTTL(kh, opts.TTL)
	}
	s.commit(logEntry{typ: spec.EventCreated, kh: kh, kv: v})
	return s.rev, nil
}

// Update replaces the value of an existing key, as a compare-and-swap when
// expectedModRevision > 0, and returns the revision of the write. It removes
// the key's TTL. See spec.Store for the errors.
func (s *Store) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := spec.ValidateWrite(key, value, expectedModRevision); err != nil {
		return 0, err
	}
	val := clone(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	kh, cur, err := s.lookupForWrite(key, expectedModRevision)
	if err != nil {
		return 0, err
	}
	prev := *cur // cur points into kh.versions, which append may move
	s.rev++
	v := version{value: val, create: prev.create, mod: s.rev}
	kh.versions = append(kh.versions, v)
	s.clearTTL(kh)
	s.commit(logEntry{typ: spec.EventUpdated, kh: kh, kv: v, prev: prev})
	return s.rev, nil
}

// Delete removes key, as a compare-and-swap when expectedModRevision > 0,
// and returns its last state and the revision of the delete. See spec.Store
// for the errors.
func (s *Store) Delete(ctx context.Context, key string, expectedModRevision int64) (spec.KeyValue, int64, error) {
	if err := ctx.Err(); err != nil {
		return spec.KeyValue{}, 0, err
	}
	if err := spec.ValidateKey(key); err != nil {
		return spec.KeyValue{}, 0, err
	}
	if err := spec.ValidateRevision("expected mod revision", expectedModRevision); err != nil {
		return spec.KeyValue{}, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return spec.KeyValue{}, 0, errClosed
	}
	kh, cur, err := s.lookupForWrite(key, expectedModRevision)
	if err != nil {
		return spec.KeyValue{}, 0, err
	}
	last := kvOf(key, cur)
	s.rev++
	e := s.tombstone(kh, s.rev)
	s.fanout(&e)
	s.retain()
	return last, s.rev, nil
}

// lookupForWrite returns key's history and current version for an Update or
// Delete, or ErrNotFound / ErrConflict. s.mu is held.
func (s *Store) lookupForWrite(key string, expectedModRevision int64) (*keyHistory, *version, error) {
	kh := s.keys[key]
	if kh == nil {
		return nil, nil, fmt.Errorf("key %q: %w", key, spec.ErrNotFound)
	}
	cur, ok := kh.current()
	if !ok {
		return nil, nil, fmt.Errorf("key %q: %w", key, spec.ErrNotFound)
	}
	if expectedModRevision > 0 && cur.mod != expectedModRevision {
		return nil, nil, fmt.Errorf("key %q has mod revision %d, expected %d: %w", key, cur.mod, expectedModRevision, spec.ErrConflict)
	}
	return kh, cur, nil
}

// commit logs the single change of revision s.rev, hands it to the watchers
// and applies the history retention. s.mu is held.
func (s *Store) commit(e logEntry) {
	s.log.push(e)
	s.fanout(&e)
	s.retain()
}

// retain compacts the history beyond Options.HistoryRevisions. s.mu is held.
func (s *Store) retain() {
	if s.opts.HistoryRevisions < 0 {
		return
	}
	if target := s.rev - s.opts.HistoryRevisions + 1; target > s.compactRev {
		s.compact(target)
	}
}

// compact discards the history before revision rev, which must be above
// s.compactRev and at most s.rev. Each log entry it drops names the key it
// changed, whose history is then trimmed, so the cost is proportional to the
// history dropped. s.mu is held.
func (s *Store) compact(rev int64) {
	s.compactRev = rev
	for s.log.Len() > 0 && s.log.front().rev() < rev {
		kh := s.log.front().kh
		s.log.pop()
		s.trim(kh)
	}
	// The changes at rev itself stay in the log (a watch from rev-1 replays
	// them), but the versions they replaced are no longer visible.
	for i := 0; i < s.log.Len() && s.log.at(i).rev() == rev; i++ {
		s.trim(s.log.at(i).kh)
	}
}

// trim trims kh's history to s.compactRev, and forgets the key when nothing
// of it remains. s.mu is held.
func (s *Store) trim(kh *keyHistory) {
	if kh.removed || !kh.trim(s.compactRev) {
		return
	}
	kh.removed = true
	delete(s.keys, kh.key)
	s.index.Delete(kh.key)
}

// Compact discards the history of revisions older than revision. See
// spec.Store for the errors.
func (s *Store) Compact(ctx context.Context, revision int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := spec.ValidateRevision("revision", revision); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	switch {
	case revision <= s.compactRev:
		return fmt.Errorf("compact to revision %d (compacted revision %d): %w", revision, s.compactRev, spec.ErrCompacted)
	case revision > s.rev:
		return fmt.Errorf("compact to revision %d (current revision %d): %w", revision, s.rev, spec.ErrFutureRevision)
	}
	s.compact(revision)
	return nil
}

// Revision returns the current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return s.rev, nil
}

// Watch streams the changes under prefix after revision afterRevision (or
// after the call when it is 0); see spec.Store for the guarantees. Each
// watch has one goroutine, which ends with the watch. A watch from a
// revision not yet reached waits for it. ctx bounds the watch's lifetime.
func (s *Store) Watch(ctx context.Context, prefix string, afterRevision int64) (spec.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := spec.DirPrefix(prefix)
	if err != nil {
		return nil, err
	}
	if err := spec.ValidateRevision("after revision", afterRevision); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if afterRevision > 0 && afterRevision < s.compactRev-1 {
		return nil, fmt.Errorf("watch %q after revision %d (compacted revision %d): %w", prefix, afterRevision, s.compactRev, spec.ErrCompacted)
	}
	w := &watcher{
		s:      s,
		prefix: dir,
		limit:  s.opts.WatchBuffer,
		ctx:    ctx,
		ch:     make(chan []spec.Event, 1),
		notify: make(chan struct{}, 1),
		kill:   make(chan struct{}),
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.watchers[w] = struct{}{}
	next := int64(0)
	if afterRevision == 0 || afterRevision >= s.rev {
		s.subscribe(w, max(afterRevision, s.rev))
	} else {
		next = afterRevision + 1
	}
	s.wg.Add(1)
	go w.run(next)
	return w, nil
}

// Close releases the store: open watches end with an error event wrapping
// spec.ErrClosed, the expiry goroutine stops, and Close waits for every
// goroutine of the store to end (which never depends on watch consumers).
// Every later call returns an error wrapping spec.ErrClosed. Close is
// idempotent and always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for w := range s.watchers {
			w.fail(errClosed)
		}
		// Release the data; the goroutines still running only touch the
		// watcher maps, and deleting from a nil map is a no-op.
		s.keys, s.index, s.log, s.ttls = nil, keyIndex{}, eventLog{}, nil
		s.watchers, s.watchIdx = nil, nil
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
