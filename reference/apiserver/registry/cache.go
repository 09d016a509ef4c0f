package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubelab/kubelab/spec"
)

// ProgressKey is the key the cache writes to learn that it has seen every
// change up to the store's current revision (etcd's progress notification,
// done with a write: see Cache.WaitFresh).
const ProgressKey = KeyRoot + "/kubelab.io/watch-progress"

var metaAccessor = meta.Accessor

// cachedObject is one object in the cache. It is immutable once cached:
// lists and watches hand out obj itself, and nobody may change it.
type cachedObject struct {
	key    string
	obj    runtime.Object
	labels labels.Set
	fields fields.Set
	// modRev is the store revision obj was decoded at (0: not known, as
	// for the last state of a deleted object).
	modRev int64

	once sync.Once
	enc  []byte // JSON of obj, encoded on first use
}

// JSON returns the object's JSON encoding, computed once.
func (o *cachedObject) JSON() []byte {
	o.once.Do(func() {
		b, err := json.Marshal(o.obj)
		if err != nil {
			b = []byte("null")
		}
		o.enc = b
	})
	return o.enc
}

// Event is one change delivered to a watch: a watch.Event with the object's
// revision and its encoding shared by every watcher.
type Event struct {
	// Type is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
	Type watch.EventType
	// Object is the object after the change (for DELETED: its last state,
	// with the resourceVersion of the delete). It must not be modified.
	Object runtime.Object
	// Revision is the revision of the change.
	Revision int64
	// cached holds the encoding of Object when it comes from the cache.
	cached *cachedObject
}

// JSON returns the JSON encoding of the event's object; events of the cache
// share one encoding among all watchers.
func (e Event) JSON() []byte {
	if e.cached != nil {
		return e.cached.JSON()
	}
	b, err := json.Marshal(e.Object)
	if err != nil {
		return []byte("null")
	}
	return b
}

// cachedEvent is one change in a resource's history window.
type cachedEvent struct {
	typ       watch.EventType
	obj, prev *cachedObject // prev is nil for ADDED
	rev       int64
}

// resourceCache is the cached state and recent history of one resource.
// Guarded by Cache.mu.
type resourceCache struct {
	res      *Resource
	objects  map[string]*cachedObject
	history  []cachedEvent // ring buffer of the last len(history) events
	start, n int           // ring: first index and count
	oldest   int64         // a watch may start at any revision >= oldest
	watchers map[*cacheWatcher]struct{}
}

func (rc *resourceCache) push(e cachedEvent) {
	if rc.n == len(rc.history) {
		// Evict the oldest: watches must now start at or after its revision.
		rc.oldest = rc.history[rc.start].rev
		rc.start = (rc.start + 1) % len(rc.history)
		rc.n--
	}
	rc.history[(rc.start+rc.n)%len(rc.history)] = e
	rc.n++
}

// CacheOptions configure a Cache.
type CacheOptions struct {
	// HistorySize is the number of events kept per resource for watches
	// that resume from a past resourceVersion; 0 means 4096.
	HistorySize int
	// WatcherBuffer is how many events a watcher may lag behind before it
	// is cut off (its channel closed; the client re-watches); 0 means 1024.
	WatcherBuffer int
	// BookmarkInterval is how often watchers that allow bookmarks get one;
	// 0 means 10s.
	BookmarkInterval time.Duration
	// Logger receives the cache's logs; nil discards.
	Logger *slog.Logger
}

// Cache is the watch cache: one store watch on KeyRoot feeds an in-memory
// copy of every resource of the table and a window of its recent changes,
// from which lists and watches are served, so N watchers cost one store
// watch. Because that one watch delivers the whole key space in revision
// order, the cache knows that it has seen every change up to a revision, for
// all resources at once.
//
// Start loads the state and starts the watch; Stop ends it. A Cache is safe
// for concurrent use.
type Cache struct {
	store spec.Store
	table *Table
	opts  CacheOptions
	log   *slog.Logger

	mu        sync.RWMutex // guards the fields below
	rev       int64        // every change up to rev has been applied
	resources map[*Resource]*resourceCache
	advanced  chan struct{} // closed and replaced when rev grows
	ready     bool

	cancel context.CancelFunc
	done   chan struct{}
}

// NewCache returns a cache over store for the resources of table; call
// Start before use.
func NewCache(store spec.Store, table *Table, opts CacheOptions) *Cache {
	if opts.HistorySize <= 0 {
		opts.HistorySize = 4096
	}
	if opts.WatcherBuffer <= 0 {
		opts.WatcherBuffer = 1024
	}
	if opts.BookmarkInterval <= 0 {
		opts.BookmarkInterval = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{store: store, table: table, opts: opts, log: log, advanced: make(chan struct{})}
}

// resourcesFor routes a store key to the resources stored under it: one,
// or several when resources share storage (core/v1 and events.k8s.io/v1
// events); none for keys outside the table.
func (c *Cache) resourcesFor(key string) []*Resource {
	var out []*Resource
	for _, r := range c.table.All() {
		p := r.Prefix()
		if strings.HasPrefix(key, p) && len(key) > len(p) && key[len(p)] == '/' {
			out = append(out, r)
		}
	}
	return out
}

// decode turns a stored value into its typed object with resourceVersion
// set to rev.
func decode(r *Resource, value []byte, rev int64) (runtime.Object, error) {
	obj := r.New()
	if sc := r.Stored; sc != nil {
		stored := sc.New()
		if err := json.Unmarshal(value, stored); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", sc.GVK.Kind, err)
		}
		obj = sc.From(stored)
	} else if err := json.Unmarshal(value, obj); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	m, err := metaAccessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(fmt.Sprint(rev))
	return obj, nil
}

func (c *Cache) newCached(r *Resource, key string, obj runtime.Object) *cachedObject {
	m := objectMeta(obj)
	fs := fields.Set{"metadata.name": m.GetName()}
	if r.Namespaced {
		fs["metadata.namespace"] = m.GetNamespace()
	}
	if r.Strategy.Fields != nil {
		for k, v := range r.Strategy.Fields(obj) {
			fs[k] = v
		}
	}
	return &cachedObject{key: key, obj: obj, labels: labels.Set(m.GetLabels()), fields: fs}
}

// Start lists every resource and starts the store watch. It returns once the
// cache holds a consistent state.
func (c *Cache) Start(ctx context.Context) error {
	rev, state, err := c.load(ctx)
	if err != nil {
		return err
	}
	c.install(rev, state)
	wctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go c.run(wctx, rev)
	return nil
}

// Stop ends the store watch and every cache watcher.
func (c *Cache) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.mu.Lock()
	for _, rc := range c.resources {
		for w := range rc.watchers {
			w.closeLocked()
		}
		rc.watchers = nil
	}
	c.mu.Unlock()
}

// load reads the whole key space at one revision, page by page.
func (c *Cache) load(ctx context.Context) (int64, map[*Resource]map[string]*cachedObject, error) {
	state := map[*Resource]map[string]*cachedObject{}
	var rev int64
	after := ""
	for {
		res, err := c.store.List(ctx, KeyRoot, spec.ListOptions{Revision: rev, Limit: 1000, After: after})
		if err != nil {
			return 0, nil, err
		}
		rev = res.Revision
		for _, kv := range res.Items {
			for _, r := range c.resourcesFor(kv.Key) {
				obj, err := decode(r, kv.Value, kv.ModRevision)
				if err != nil {
					c.log.Warn("watch cache: skipping undecodable object", "key", kv.Key, "err", err)
					continue
				}
				if state[r] == nil {
					state[r] = map[string]*cachedObject{}
				}
				co := c.newCached(r, kv.Key, obj)
				co.modRev = kv.ModRevision
				state[r][kv.Key] = co
			}
		}
		if !res.More || len(res.Items) == 0 {
			return rev, state, nil
		}
		after = res.Items[len(res.Items)-1].Key
	}
}

// install replaces the cache's state (at rev) and closes existing watchers,
// which must resume from their last revision.
func (c *Cache) install(rev int64, state map[*Resource]map[string]*cachedObject) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.resources {
		for w := range rc.watchers {
			w.closeLocked()
		}
	}
	c.resources = map[*Resource]*resourceCache{}
	for _, r := range c.table.All() {
		objs := state[r]
		if objs == nil {
			objs = map[string]*cachedObject{}
		}
		c.resources[r] = &resourceCache{
			res: r, objects: objs, history: make([]cachedEvent, c.opts.HistorySize),
			oldest: rev, watchers: map[*cacheWatcher]struct{}{},
		}
	}
	c.setRevLocked(rev)
	c.ready = true
}

func (c *Cache) setRevLocked(rev int64) {
	if rev > c.rev {
		c.rev = rev
		close(c.advanced)
		c.advanced = make(chan struct{})
	}
}

// run follows the store watch; on a watch failure (compaction, too slow) it
// reloads the state and starts again.
func (c *Cache) run(ctx context.Context, rev int64) {
	defer close(c.done)
	bookmarks := time.NewTicker(c.opts.BookmarkInterval)
	defer bookmarks.Stop()
	for ctx.Err() == nil {
		err := c.follow(ctx, rev, bookmarks.C)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("watch cache: store watch ended; reloading", "err", err)
		for ctx.Err() == nil {
			var state map[*Resource]map[string]*cachedObject
			rev, state, err = c.load(ctx)
			if err == nil {
				c.install(rev, state)
				break
			}
			c.log.Warn("watch cache: reload failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (c *Cache) follow(ctx context.Context, rev int64, bookmarks <-chan time.Time) error {
	w, err := c.store.Watch(ctx, KeyRoot, rev)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-bookmarks:
			c.bookmark()
		case batch, ok := <-w.Events():
			if !ok {
				return errors.New("store watch closed")
			}
			for _, ev := range batch {
				if ev.Type == spec.EventError {
					return ev.Err
				}
			}
			c.apply(batch)
		}
	}
}

// apply applies one batch of store events and fans them out.
func (c *Cache) apply(batch []spec.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last int64
	for _, ev := range batch {
		last = ev.Revision()
		for _, r := range c.resourcesFor(ev.KV.Key) {
			c.applyOne(r, ev)
		}
	}
	c.setRevLocked(last)
}

// applyOne applies one store event to resource r. c.mu is held.
func (c *Cache) applyOne(r *Resource, ev spec.Event) {
	{
		rc := c.resources[r]
		prev := rc.objects[ev.KV.Key]
		var ce cachedEvent
		switch ev.Type {
		case spec.EventCreated, spec.EventUpdated:
			obj, err := decode(r, ev.KV.Value, ev.KV.ModRevision)
			if err != nil {
				c.log.Warn("watch cache: skipping undecodable object", "key", ev.KV.Key, "err", err)
				return
			}
			co := c.newCached(r, ev.KV.Key, obj)
			co.modRev = ev.KV.ModRevision
			rc.objects[ev.KV.Key] = co
			ce = cachedEvent{typ: watch.Modified, obj: co, prev: prev, rev: ev.Revision()}
			if prev == nil {
				ce.typ = watch.Added
			}
		case spec.EventDeleted:
			delete(rc.objects, ev.KV.Key)
			if prev == nil {
				return
			}
			// The deleted object carries the revision of the delete.
			obj := prev.obj.DeepCopyObject()
			objectMeta(obj).SetResourceVersion(fmt.Sprint(ev.Revision()))
			co := &cachedObject{key: prev.key, obj: obj, labels: prev.labels, fields: prev.fields}
			ce = cachedEvent{typ: watch.Deleted, obj: co, prev: prev, rev: ev.Revision()}
		default:
			return
		}
		rc.push(ce)
		for w := range rc.watchers {
			w.deliverLocked(ce)
		}
	}
}

// bookmark sends a BOOKMARK at the current revision to every watcher that
// asked for bookmarks.
func (c *Cache) bookmark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.resources {
		for w := range rc.watchers {
			if w.opts.Bookmarks {
				w.sendLocked(Event{Type: watch.Bookmark, Object: bookmarkObject(rc.res, c.rev, false), Revision: c.rev})
			}
		}
	}
}

// bookmarkObject is the object of a BOOKMARK event: an empty object of the
// resource's kind with only resourceVersion (and the end-of-initial-events
// annotation when initialEnd).
func bookmarkObject(r *Resource, rev int64, initialEnd bool) runtime.Object {
	obj := r.New()
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	m := objectMeta(obj)
	m.SetResourceVersion(fmt.Sprint(rev))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return obj
}

// Revision returns the revision up to which the cache has applied every
// change.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// WaitFresh waits until the cache has applied every change up to minRev, or,
// when minRev is 0, up to the store's current revision (a consistent read).
// If the cache does not get there by itself, it writes ProgressKey and waits
// for that write to come back through the watch. A minRev the store has not
// reached yet is a "Too large resource version" timeout error, as upstream.
func (c *Cache) WaitFresh(ctx context.Context, minRev int64) error {
	consistent := minRev == 0
	if consistent {
		cur, err := c.store.Revision(ctx)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		minRev = cur
	}
	if c.waitRev(ctx, minRev, 100*time.Millisecond) {
		return nil
	}
	// Writes outside KeyRoot, or a quiet resource: make the watch move.
	p, err := c.progress(ctx)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if p < minRev && !consistent {
		return tooLargeResourceVersion(minRev, p)
	}
	if !c.waitRev(ctx, max(p, minRev), 3*time.Second) {
		return tooLargeResourceVersion(minRev, c.Revision())
	}
	return nil
}

// tooLargeResourceVersion is upstream's error for a resourceVersion the
// server has not seen yet: 504 Timeout with cause ResourceVersionTooLarge.
func tooLargeResourceVersion(minRev, cur int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", minRev, cur), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
	return err
}

func (c *Cache) progress(ctx context.Context) (int64, error) {
	val := []byte(fmt.Sprint(time.Now().UnixNano()))
	rev, err := c.store.Update(ctx, ProgressKey, val, 0)
	if errors.Is(err, spec.ErrNotFound) {
		rev, err = c.store.Create(ctx, ProgressKey, val, spec.CreateOptions{})
		if errors.Is(err, spec.ErrAlreadyExists) {
			rev, err = c.store.Update(ctx, ProgressKey, val, 0)
		}
	}
	return rev, err
}

func (c *Cache) waitRev(ctx context.Context, rev int64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.mu.RLock()
		cur, ch := c.rev, c.advanced
		c.mu.RUnlock()
		if cur >= rev {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Filter selects objects of a list or watch.
type Filter struct {
	// Namespace limits to one namespace; "" means all.
	Namespace string
	// Label and Field select; nil means everything.
	Label labels.Selector
	Field fields.Selector
}

func (f Filter) matches(r *Resource, o *cachedObject) bool {
	if o == nil {
		return false
	}
	if f.Namespace != "" && r.Namespaced && o.fields["metadata.namespace"] != f.Namespace {
		return false
	}
	if f.Label != nil && !f.Label.Empty() && !f.Label.Matches(o.labels) {
		return false
	}
	if f.Field != nil && !f.Field.Empty() && !f.Field.Matches(o.fields) {
		return false
	}
	return true
}

// decodedAt returns the cached object of r under key if it was decoded from
// the store's value at modRev, and nil otherwise. The same key and
// modification revision mean the same stored bytes, so the object is what
// decoding them again would give; it must not be modified.
func (c *Cache) decodedAt(r *Resource, key string, modRev int64) runtime.Object {
	if c == nil || modRev == 0 {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	rc := c.resources[r]
	if rc == nil {
		return nil
	}
	if o := rc.objects[key]; o != nil && o.modRev == modRev {
		return o.obj
	}
	return nil
}

// List returns the cached objects of r selected by f, sorted by key, and the
// revision they are current at. Callers call WaitFresh first for anything
// but a resourceVersion="0" list. The objects must not be modified.
func (c *Cache) List(r *Resource, f Filter) ([]runtime.Object, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rc := c.resources[r]
	if rc == nil {
		return nil, c.rev
	}
	var keys []string
	for k, o := range rc.objects {
		if f.matches(r, o) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]runtime.Object, len(keys))
	for i, k := range keys {
		out[i] = rc.objects[k].obj
	}
	return out, c.rev
}

// WatchOptions qualify a cache watch.
type WatchOptions struct {
	// Filter selects the objects watched.
	Filter Filter
	// Revision: deliver the changes after it. With InitialEvents, it is
	// the minimum revision of the initial state (0 = any).
	Revision int64
	// InitialEvents: start with a synthetic ADDED for every selected object
	// (the state at the cache's current revision).
	InitialEvents bool
	// InitialEventsEndBookmark: after the initial events, send a BOOKMARK
	// annotated with metav1.InitialEventsAnnotationKey (sendInitialEvents).
	InitialEventsEndBookmark bool
	// Bookmarks: send periodic BOOKMARK events.
	Bookmarks bool
}

// ForgetHistory drops the recorded events of every resource: watches may
// then start only at the cache's current revision or later. A server calls
// it once its own bootstrap writes are done so that, as upstream's watch
// cache, it answers a watch from a revision before its start (e.g. "1")
// with 410 Expired rather than replaying from an empty store.
func (c *Cache) ForgetHistory() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.resources {
		rc.start, rc.n = 0, 0
		if rc.oldest < c.rev {
			rc.oldest = c.rev
		}
	}
}

// Watch starts a watch of r. A Revision older than the resource's history
// window is a 410 Expired error ("too old resource version"), as upstream.
// The caller must Stop the watcher.
func (c *Cache) Watch(r *Resource, opts WatchOptions) (*CacheWatcher, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := c.resources[r]
	if rc == nil {
		return nil, apierrors.NewServiceUnavailable("watch cache not ready")
	}
	w := &cacheWatcher{
		c: c, rc: rc, opts: opts,
		in:   make(chan Event, c.opts.WatcherBuffer),
		out:  make(chan Event),
		stop: make(chan struct{}),
	}
	var initial []Event
	if opts.InitialEvents {
		var keys []string
		for k, o := range rc.objects {
			if opts.Filter.matches(r, o) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			o := rc.objects[k]
			initial = append(initial, Event{Type: watch.Added, Object: o.obj, Revision: c.rev, cached: o})
		}
		if opts.InitialEventsEndBookmark {
			initial = append(initial, Event{Type: watch.Bookmark, Object: bookmarkObject(r, c.rev, true), Revision: c.rev})
		}
	} else {
		if opts.Revision < rc.oldest {
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", opts.Revision, rc.oldest))
		}
		for i := 0; i < rc.n; i++ {
			e := rc.history[(rc.start+i)%len(rc.history)]
			if e.rev > opts.Revision {
				if ev, ok := w.convert(e); ok {
					initial = append(initial, ev)
				}
			}
		}
	}
	rc.watchers[w] = struct{}{}
	go w.run(initial)
	return &CacheWatcher{w: w}, nil
}

// cacheWatcher is one watch served by the cache.
type cacheWatcher struct {
	c    *Cache
	rc   *resourceCache
	opts WatchOptions
	in   chan Event // filled by the cache under c.mu, never blocking
	out  chan Event // read by the consumer
	stop chan struct{}

	closed   bool // guarded by c.mu: in is closed
	stopOnce sync.Once
}

// convert turns a history event into what this watcher sees, applying its
// filter the way upstream does: an update that makes an object leave the
// selection is a DELETED, one that makes it enter is an ADDED.
func (w *cacheWatcher) convert(e cachedEvent) (Event, bool) {
	r := w.rc.res
	cur := w.opts.Filter.matches(r, e.obj)
	old := e.prev != nil && w.opts.Filter.matches(r, e.prev)
	switch e.typ {
	case watch.Added:
		if cur {
			return Event{Type: watch.Added, Object: e.obj.obj, Revision: e.rev, cached: e.obj}, true
		}
	case watch.Modified:
		switch {
		case cur && old:
			return Event{Type: watch.Modified, Object: e.obj.obj, Revision: e.rev, cached: e.obj}, true
		case cur:
			return Event{Type: watch.Added, Object: e.obj.obj, Revision: e.rev, cached: e.obj}, true
		case old:
			return Event{Type: watch.Deleted, Object: e.obj.obj, Revision: e.rev, cached: e.obj}, true
		}
	case watch.Deleted:
		if old {
			return Event{Type: watch.Deleted, Object: e.obj.obj, Revision: e.rev, cached: e.obj}, true
		}
	}
	return Event{}, false
}

func (w *cacheWatcher) deliverLocked(e cachedEvent) {
	if ev, ok := w.convert(e); ok {
		w.sendLocked(ev)
	}
}

// sendLocked queues ev without blocking; a full queue cuts the watcher off.
func (w *cacheWatcher) sendLocked(ev Event) {
	if w.closed {
		return
	}
	select {
	case w.in <- ev:
	default:
		w.c.log.Info("watch cache: cutting off a slow watcher", "resource", w.rc.res.Name)
		w.closeLocked()
	}
}

func (w *cacheWatcher) closeLocked() {
	if !w.closed {
		w.closed = true
		close(w.in)
		delete(w.rc.watchers, w)
	}
}

func (w *cacheWatcher) run(initial []Event) {
	defer close(w.out)
	for _, ev := range initial {
		select {
		case w.out <- ev:
		case <-w.stop:
			return
		}
	}
	for {
		select {
		case ev, ok := <-w.in:
			if !ok {
				return
			}
			select {
			case w.out <- ev:
			case <-w.stop:
				return
			}
		case <-w.stop:
			return
		}
	}
}

// CacheWatcher is an open watch on the cache.
type CacheWatcher struct{ w *cacheWatcher }

// Events delivers the watch's events; it is closed when the watch ends
// (Stop, the cache reloading, or the watcher being too slow). A closed
// channel means the client should re-watch from the last revision it saw.
func (cw *CacheWatcher) Events() <-chan Event { return cw.w.out }

// Stop ends the watch. It is idempotent.
func (cw *CacheWatcher) Stop() {
	w := cw.w
	w.stopOnce.Do(func() {
		close(w.stop)
		w.c.mu.Lock()
		w.closeLocked()
		w.c.mu.Unlock()
	})
}

// Ready reports whether the cache holds a state.
func (c *Cache) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ready
}

// Dependents returns the cached objects, of any resource, that have an
// owner reference to uid (in namespace, when it is not empty), with their
// resources. Used for orphan and foreground deletion.
func (c *Cache) Dependents(namespace string, uid string) map[*Resource][]runtime.Object {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[*Resource][]runtime.Object{}
	for r, rc := range c.resources {
		for _, o := range rc.objects {
			if namespace != "" && r.Namespaced && o.fields["metadata.namespace"] != namespace {
				continue
			}
			for _, ref := range objectMeta(o.obj).GetOwnerReferences() {
				if string(ref.UID) == uid {
					out[r] = append(out[r], o.obj)
					break
				}
			}
		}
	}
	return out
}

// Keys returns the keys of r's cached objects in namespace ("" = all).
func (c *Cache) Keys(r *Resource, namespace string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for k, o := range c.resources[r].objects {
		if namespace == "" || o.fields["metadata.namespace"] == namespace {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
