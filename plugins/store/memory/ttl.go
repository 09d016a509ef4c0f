package memory

import (
	"container/heap"
	"slices"
	"strings"
	"time"

	"github.com/kubelab/kubelab/spec"
)

// ttlItem is the pending expiry of one key's current version.
type ttlItem struct {
	kh       *keyHistory
	deadline time.Time
	index    int // position in the ttlHeap
}

// ttlHeap is a min-heap of expiries by deadline (container/heap). The
// Store's mutex guards it.
type ttlHeap []*ttlItem

func (h ttlHeap) Len() int           { return len(h) }
func (h ttlHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h ttlHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *ttlHeap) Push(x any) {
	it := x.(*ttlItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *ttlHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.index = -1
	return it
}

// setTTL makes kh's current version expire after d, starting the expiry
// goroutine on first use. s.mu is held.
func (s *Store) setTTL(kh *keyHistory, d time.Duration) {
	it := &ttlItem{kh: kh, deadline: time.Now().Add(d)}
	heap.Push(&s.ttls, it)
	kh.ttl = it
	if !s.ttlRunning {
		s.ttlRunning = true
		s.wg.Add(1)
		go s.expireLoop()
		return
	}
	if it.index == 0 { // a new earliest deadline: re-arm the timer
		select {
		case s.ttlWake <- struct{}{}:
		default:
		}
	}
}

// clearTTL removes kh's pending expiry, if any. s.mu is held.
func (s *Store) clearTTL(kh *keyHistory) {
	if kh.ttl != nil {
		heap.Remove(&s.ttls, kh.ttl.index)
		kh.ttl = nil
	}
}

// expireLoop is the goroutine that deletes keys whose TTL has passed. It ends
// when the store is closed.
func (s *Store) expireLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, open := s.expire(time.Now())
		if !open {
			return
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-timer.C:
		case <-s.ttlWake:
		case <-s.done:
			return
		}
	}
}

// expire deletes every key whose deadline is at or before now, all at one new
// revision, and returns the next deadline (zero if none). It reports false
// when the store is closed.
func (s *Store) expire(now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return time.Time{}, false
	}
	var due []*keyHistory
	for len(s.ttls) > 0 && !s.ttls[0].deadline.After(now) {
		it := heap.Pop(&s.ttls).(*ttlItem)
		it.kh.ttl = nil
		due = append(due, it.kh)
	}
	if len(due) > 0 {
		slices.SortFunc(due, func(a, b *keyHistory) int { return strings.Compare(a.key, b.key) })
		s.rev++
		es := make([]logEntry, 0, len(due))
		for _, kh := range due {
			es = append(es, s.tombstone(kh, s.rev))
		}
		if len(es) == 1 {
			s.fanout(&es[0])
		} else {
			s.fanoutBatch(es)
		}
		s.retain()
	}
	if len(s.ttls) == 0 {
		return time.Time{}, true
	}
	return s.ttls[0].deadline, true
}

// tombstone deletes kh's current version at revision rev, records the change
// in the log and returns the log entry. s.mu is held; the key must exist.
func (s *Store) tombstone(kh *keyHistory, rev int64) logEntry {
	cur, _ := kh.current()
	prev := *cur
	kh.versions = append(kh.versions, version{mod: rev, deleted: true})
	s.clearTTL(kh)
	e := logEntry{typ: spec.EventDeleted, kh: kh, kv: version{mod: rev, deleted: true}, prev: prev}
	s.log.push(e)
	return e
}
