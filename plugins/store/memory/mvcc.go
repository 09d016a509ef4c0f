package memory

import (
	"sort"

	"github.com/kubelab/kubelab/spec"
)

// version is one state of a key: a value written at mod, or a tombstone
// (deleted) recording that the key was deleted at mod.
//
// value is owned by the store and never modified after it is stored, so it
// may be shared between the key's history, the event log and watcher queues
// and read without the store's mutex; it is copied before it is handed out.
type version struct {
	value   []byte
	create  int64
	mod     int64
	deleted bool
}

// keyHistory is the retained history of one key: its versions in ascending
// mod revision order. The last one is the key's current state (absent if it
// is a tombstone). Versions that no readable revision can see any more are
// dropped by compaction; a key whose history becomes empty leaves the store's
// map and index.
//
// Every field is guarded by the Store's mutex. key is immutable.
type keyHistory struct {
	key      string
	versions []version
	ttl      *ttlItem // the pending expiry of the current version, or nil
	removed  bool     // no longer in Store.keys and Store.index
}

// current returns the key's current version, if it exists (is not deleted).
func (h *keyHistory) current() (*version, bool) {
	if len(h.versions) == 0 {
		return nil, false
	}
	v := &h.versions[len(h.versions)-1]
	return v, !v.deleted
}

// at returns the key's version visible at revision rev: the last one with
// mod <= rev, if there is one and it is not a tombstone.
func (h *keyHistory) at(rev int64) (*version, bool) {
	vs := h.versions
	if n := len(vs); n > 0 && vs[n-1].mod <= rev { // fast path: the current version
		return &vs[n-1], !vs[n-1].deleted
	}
	i := sort.Search(len(vs), func(i int) bool { return vs[i].mod > rev })
	if i == 0 {
		return nil, false
	}
	return &vs[i-1], !vs[i-1].deleted
}

// trim drops the versions that no revision >= compactRev can see: all but the
// last version with mod <= compactRev, and that one too if it is a
// tombstone. It reports whether the history is now empty.
func (h *keyHistory) trim(compactRev int64) bool {
	vs := h.versions
	if len(vs) == 0 {
		return true
	}
	i := 0
	for i+1 < len(vs) && vs[i+1].mod <= compactRev {
		i++
	}
	if vs[i].mod <= compactRev && vs[i].deleted {
		i++
	}
	if i > 0 {
		// Reslice from the front (amortised O(1): append reallocates to
		// the live length), clearing the dropped slots for the GC.
		clear(vs[:i])
		h.versions = vs[i:]
	}
	return len(h.versions) == 0
}

// logEntry is one change in the event log: what a watch event is made of.
// Values are shared with the key history (see version).
type logEntry struct {
	typ  spec.EventType
	kh   *keyHistory
	kv   version // the new state; for EventDeleted only kv.mod is meaningful
	prev version // the previous state, for EventUpdated and EventDeleted
}

// rev returns the revision the change was committed at.
func (e *logEntry) rev() int64 { return e.kv.mod }

// event converts the entry to a spec.Event whose byte slices are carved out
// of buf, which the caller sizes with valueBytes. It returns the rest of buf.
func (e *logEntry) event(buf []byte) (spec.Event, []byte) {
	ev := spec.Event{Type: e.typ}
	key := e.kh.key
	if e.typ == spec.EventDeleted {
		ev.KV = spec.KeyValue{Key: key, ModRevision: e.kv.mod}
	} else {
		var v []byte
		v, buf = carve(buf, e.kv.value)
		ev.KV = spec.KeyValue{Key: key, Value: v, CreateRevision: e.kv.create, ModRevision: e.kv.mod}
	}
	if e.typ != spec.EventCreated {
		var v []byte
		v, buf = carve(buf, e.prev.value)
		ev.PrevKV = &spec.KeyValue{Key: key, Value: v, CreateRevision: e.prev.create, ModRevision: e.prev.mod}
	}
	return ev, buf
}

// valueBytes is how many bytes event needs from its buffer.
func (e *logEntry) valueBytes() int {
	n := 0
	if e.typ != spec.EventDeleted {
		n += len(e.kv.value)
	}
	if e.typ != spec.EventCreated {
		n += len(e.prev.value)
	}
	return n
}

// carve copies b into the front of buf and returns the copy (capped, so that
// appending to it cannot overwrite its neighbours) and the rest of buf.
func carve(buf, b []byte) ([]byte, []byte) {
	n := copy(buf, b)
	return buf[:n:n], buf[n:]
}

// toEvents converts entries to one freshly allocated batch that the caller
// owns.
func toEvents(entries []logEntry) []spec.Event {
	n := 0
	for i := range entries {
		n += entries[i].valueBytes()
	}
	buf := make([]byte, n)
	out := make([]spec.Event, len(entries))
	for i := range entries {
		out[i], buf = entries[i].event(buf)
	}
	return out
}

// eventLog is the store's history of changes in ascending revision order,
// from the compacted revision on: a queue with amortised O(1) push and pop.
//
// It is not safe for concurrent use; the Store's mutex guards it.
type eventLog struct {
	entries []logEntry // entries[head:] are live
	head    int
}

// Len returns the number of live entries.
func (l *eventLog) Len() int { return len(l.entries) - l.head }

// push appends e, whose revision must be >= every revision in the log.
func (l *eventLog) push(e logEntry) {
	if l.head > 0 && l.head >= len(l.entries)/2 && len(l.entries) == cap(l.entries) {
		// The dead front is at least half the array: slide the live part
		// down instead of growing.
		n := copy(l.entries, l.entries[l.head:])
		clear(l.entries[n:])
		l.entries = l.entries[:n]
		l.head = 0
	}
	l.entries = append(l.entries, e)
}

// front returns the oldest live entry; the log must not be empty.
func (l *eventLog) front() *logEntry { return &l.entries[l.head] }

// pop removes the oldest live entry.
func (l *eventLog) pop() {
	l.entries[l.head] = logEntry{}
	l.head++
	if l.head == len(l.entries) {
		l.entries = l.entries[:0]
		l.head = 0
	}
}

// search returns the position (an argument for at) of the first live entry
// with revision >= rev, or Len() if there is none.
func (l *eventLog) search(rev int64) int {
	live := l.entries[l.head:]
	return sort.Search(len(live), func(i int) bool { return live[i].rev() >= rev })
}

// at returns the live entry at position i (0 is the oldest).
func (l *eventLog) at(i int) *logEntry { return &l.entries[l.head+i] }
