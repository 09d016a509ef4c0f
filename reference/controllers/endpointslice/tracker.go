package endpointslice

import (
	"errors"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ErrStaleCache is returned by a sync that found the slice cache behind
// the controller's own writes: deciding from it would duplicate slices
// (a slice created but not yet seen) or undo updates. The key is retried.
var ErrStaleCache = errors.New("endpointslice informer cache is older than this controller's writes")

// trackerTTL bounds how long a write is waited for (a slice changed or
// deleted by someone else in between would otherwise hold a Service back).
const trackerTTL = time.Minute

// tracker remembers, per Service key, the slice writes the cache has not
// shown yet (upstream's EndpointSliceTracker, keyed by resourceVersion
// rather than generation). Safe for concurrent use.
type tracker struct {
	now func() time.Time

	mu sync.Mutex // guards m
	m  map[string][]write
}

type write struct {
	name    string
	created bool      // the slice must appear
	priorRV string    // updated: the cache must move past this version
	uid     types.UID // deleted: this slice must disappear
	at      time.Time
}

func newTracker() *tracker { return &tracker{now: time.Now, m: map[string][]write{}} }

func (t *tracker) add(svc string, w write) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w.at = t.now()
	t.m[svc] = append(t.m[svc], w)
}

// Created records a slice created for svc.
func (t *tracker) Created(svc, name string) { t.add(svc, write{name: name, created: true}) }

// Updated records an update of a slice read at priorRV.
func (t *tracker) Updated(svc, name, priorRV string) { t.add(svc, write{name: name, priorRV: priorRV}) }

// Deleted records the deletion of a slice.
func (t *tracker) Deleted(svc, name string, uid types.UID) { t.add(svc, write{name: name, uid: uid}) }

// Stale reports whether cached (svc's slices in the cache) misses one of
// the writes recorded for svc; writes it shows are forgotten.
func (t *tracker) Stale(svc string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	byName := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range cached {
		byName[s.Name] = s
	}
	now := t.now()
	var pending []write
	for _, w := range t.m[svc] {
		if now.Sub(w.at) > trackerTTL {
			continue
		}
		s := byName[w.name]
		switch {
		case w.created && s == nil,
			w.priorRV != "" && s != nil && s.ResourceVersion == w.priorRV,
			w.uid != "" && s != nil && s.UID == w.uid:
			pending = append(pending, w)
		}
	}
	if len(pending) == 0 {
		delete(t.m, svc)
		return false
	}
	t.m[svc] = pending
	return true
}

// Forget drops svc's records (the Service is gone).
func (t *tracker) Forget(svc string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, svc)
}
