package controller

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long expectations are trusted before a
// controller syncs anyway (upstream's 5 minutes): a watch event lost for
// good must not stall a controller forever.
const ExpectationsTimeout = 5 * time.Minute

// Expectations records, per controller key, how many creations the
// controller issued and which objects it asked to delete, that its informer
// has not shown yet. While some are outstanding the controller must not
// decide again from its cache — it would count the same missing pods twice
// and over-create, or delete again pods already going. Upstream's
// UIDTrackingControllerExpectations: deletions are tracked by object key,
// so a deletion someone else made does not satisfy one of ours.
// Safe for concurrent use.
type Expectations struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]*expectation
}

type expectation struct {
	add int64
	del map[string]bool
	set time.Time
}

// NewExpectations returns empty expectations.
func NewExpectations() *Expectations { return &Expectations{m: map[string]*expectation{}} }

func (e *Expectations) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// ExpectCreations records that key's controller is about to issue add
// creations, replacing what was recorded before.
func (e *Expectations) ExpectCreations(key string, add int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{add: int64(add), set: e.now()}
}

// ExpectDeletions records that key's controller is about to delete the
// objects objKeys ("namespace/name"), replacing what was recorded before.
func (e *Expectations) ExpectDeletions(key string, objKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{del: map[string]bool{}, set: e.now()}
	for _, k := range objKeys {
		x.del[k] = true
	}
	e.m[key] = x
}

// LowerCreations lowers key's outstanding creations by n: creations that
// failed or were never issued.
func (e *Expectations) LowerCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= int64(n)
	}
}

// CreationObserved lowers key's outstanding creations by one.
func (e *Expectations) CreationObserved(key string) { e.LowerCreations(key, 1) }

// DeletionObserved marks the deletion of objKey as seen (or as failed):
// it no longer holds key's controller back. Deletions not expected are
// ignored.
func (e *Expectations) DeletionObserved(key, objKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.del, objKey)
	}
}

// Satisfied reports whether key's controller may decide from its cache:
// nothing is recorded, everything recorded was observed, or the record is
// older than ExpectationsTimeout.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	return (x.add <= 0 && len(x.del) == 0) || e.now().Sub(x.set) > ExpectationsTimeout
}

// Pending returns key's outstanding creations and deletions (0, 0 when
// none are recorded).
func (e *Expectations) Pending(key string) (add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		return int(max(x.add, 0)), len(x.del)
	}
	return 0, 0
}

// Delete forgets key (its object was deleted).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
