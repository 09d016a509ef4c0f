package controller

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long expectations are trusted before a
// controller syncs anyway (upstream's 5 minutes): a watch event lost for
// good must not stall a controller forever.
const ExpectationsTimeout = 5 * time.Minute

// Expectations records, per controller key, how many creations and
// deletions the controller issued but has not yet seen in its informer.
// While some are outstanding the controller must not decide again from its
// cache — it would count the same missing pods twice and over-create.
// Upstream's ControllerExpectations, with counts for both directions.
// Safe for concurrent use.
type Expectations struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]*expectation
}

type expectation struct {
	add, del int64
	set      time.Time
}

// NewExpectations returns empty expectations.
func NewExpectations() *Expectations { return &Expectations{m: map[string]*expectation{}} }

func (e *Expectations) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Expect records that key's controller is about to issue add creations and
// del deletions, replacing what was recorded before.
func (e *Expectations) Expect(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{add: int64(add), del: int64(del), set: e.now()}
}

// Lower lowers key's outstanding creations by add and deletions by del:
// an observed event, or an API call that failed or was never issued.
func (e *Expectations) Lower(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= int64(add)
		x.del -= int64(del)
	}
}

// CreationObserved lowers key's outstanding creations by one.
func (e *Expectations) CreationObserved(key string) { e.Lower(key, 1, 0) }

// DeletionObserved lowers key's outstanding deletions by one.
func (e *Expectations) DeletionObserved(key string) { e.Lower(key, 0, 1) }

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
	return (x.add <= 0 && x.del <= 0) || e.now().Sub(x.set) > ExpectationsTimeout
}

// Pending returns key's outstanding creations and deletions (0, 0 when
// none are recorded).
func (e *Expectations) Pending(key string) (add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		return int(x.add), int(x.del)
	}
	return 0, 0
}

// Delete forgets key (its object was deleted).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
