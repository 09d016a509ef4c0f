package memory

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/kubelab/kubelab/spec"
)

// Replay limits: how much of the event log one catch-up step of a watch
// reads while holding the store's mutex, so that replaying a long history
// never stalls writers for long. A step only ends on a revision boundary.
const (
	replayMaxScan  = 4096 // log entries examined
	replayMaxBatch = 1024 // events collected
)

// watcher is one open watch. It has two phases:
//
//   - unsynced: its goroutine replays the event log from next on, a chunk
//     at a time, and delivers each chunk;
//   - synced: when a replay step reaches the end of the log, it subscribes
//     to live events in the same critical section (so no revision is missed
//     or seen twice), and from then on writers push the events it matches
//     into its queue, which its goroutine delivers.
//
// Writers never block on a watcher: a queue that would grow beyond the
// store's WatchBuffer ends the watch with ErrWatcherTooSlow instead.
//
// The events channel has a buffer of one batch. When the watch ends with an
// error, the goroutine takes back a batch the consumer has not received yet
// and puts the error event in its place, so that ending never waits for the
// consumer (the consumer resumes from the last revision it did receive).
type watcher struct {
	s      *Store
	prefix string // directory form, ends with "/"
	limit  int    // the most events queued before the watch is cut off
	ctx    context.Context

	ch       chan []spec.Event
	notify   chan struct{} // capacity 1: the queue became non-empty
	kill     chan struct{} // closed when err is set
	stopCh   chan struct{} // closed by Stop
	stopOnce sync.Once
	done     chan struct{} // closed when the goroutine has ended

	// Guarded by s.mu.
	synced bool  // subscribed in s.watchIdx
	minRev int64 // while synced, only events after minRev are delivered

	mu     sync.Mutex // guards the fields below
	queue  []logEntry // events pushed by writers, whole revisions
	queued int        // events queued or being delivered
	err    error      // why the watch ends; set once
}

var _ spec.Watcher = (*watcher)(nil)

// Events returns the channel of event batches. See spec.Watcher.
func (w *watcher) Events() <-chan []spec.Event { return w.ch }

// Stop ends the watch and waits until its channel is closed. It is
// idempotent and safe to call concurrently, including from the goroutine
// that reads the events.
func (w *watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stopCh) })
	<-w.done
}

// push queues the events of one revision. The caller holds s.mu (so pushes
// are in revision order); push never blocks.
func (w *watcher) push(es ...logEntry) {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	if w.queued > 0 && w.queued+len(es) > w.limit {
		w.failLocked(fmt.Errorf("watch on %q: %d events not yet received at revision %d (buffer %d): %w",
			w.prefix, w.queued, es[0].rev(), w.limit, spec.ErrWatcherTooSlow))
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, es...)
	w.queued += len(es)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// fail ends the watch with err unless it has already failed.
func (w *watcher) fail(err error) {
	w.mu.Lock()
	w.failLocked(err)
	w.mu.Unlock()
}

func (w *watcher) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	w.queue = nil // release the events nobody will receive
	close(w.kill)
}

// endErr returns the error to report to the consumer when the watch ends:
// none if it was stopped or its context cancelled.
func (w *watcher) endErr() error {
	select {
	case <-w.stopCh:
		return nil
	case <-w.ctx.Done():
		return nil
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// send delivers batch unless the watch ends first, and reports whether it
// did.
func (w *watcher) send(batch []spec.Event) bool {
	select {
	case w.ch <- batch:
		return true
	case <-w.kill:
	case <-w.stopCh:
	case <-w.ctx.Done():
	}
	return false
}

// run is the watch's goroutine. next is the first revision to replay, or 0
// if the watcher starts synced.
func (w *watcher) run(next int64) {
	err := w.loop(next)
	if err != nil {
		w.s.opts.Logger.Debug("memory store: watch ended", "prefix", w.prefix, "err", err)
		select {
		case <-w.ch: // take back an undelivered batch to make room
		default:
		}
		// We are the only sender and the buffer has room: this never blocks.
		w.ch <- []spec.Event{{Type: spec.EventError, Err: err}}
	}
	close(w.ch)
	w.s.unregister(w)
	close(w.done)
	w.s.wg.Done()
}

func (w *watcher) loop(next int64) error {
	for next > 0 {
		entries, n, err := w.s.replay(w, next)
		if err != nil {
			w.fail(err)
			return w.endErr()
		}
		next = n
		if len(entries) > 0 && !w.send(toEvents(entries)) {
			return w.endErr()
		}
	}
	var spare []logEntry
	for {
		w.mu.Lock()
		q, err := w.queue, w.err
		w.queue = spare
		w.mu.Unlock()
		if err != nil {
			return w.endErr()
		}
		if len(q) == 0 {
			spare = q
			select {
			case <-w.notify:
			case <-w.kill: // err is set: reported at the top of the loop
			case <-w.stopCh:
				return nil
			case <-w.ctx.Done():
				return nil
			}
			continue
		}
		batch := toEvents(q)
		clear(q)
		spare = q[:0]
		ok := w.send(batch)
		w.mu.Lock()
		w.queued -= len(batch)
		w.mu.Unlock()
		if !ok {
			return w.endErr()
		}
	}
}

// replay reads the next chunk of history for w, from revision next on, and
// returns the events that match and the revision to continue from. When it
// reaches the end of the log it subscribes w to live events in the same
// critical section and returns next == 0.
func (s *Store) replay(w *watcher, next int64) ([]logEntry, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, errClosed
	}
	if next < s.compactRev {
		return nil, 0, fmt.Errorf("watch on %q fell behind: revision %d compacted (compacted revision %d): %w (%w)",
			w.prefix, next, s.compactRev, spec.ErrWatcherTooSlow, spec.ErrCompacted)
	}
	var out []logEntry
	l := &s.log
	i, scanned, last := l.search(next), 0, int64(-1)
	for ; i < l.Len(); i++ {
		e := l.at(i)
		if (scanned >= replayMaxScan || len(out) >= replayMaxBatch) && e.rev() != last {
			return out, e.rev(), nil
		}
		scanned++
		last = e.rev()
		if strings.HasPrefix(e.kh.key, w.prefix) {
			out = append(out, *e)
		}
	}
	s.subscribe(w, s.rev)
	return out, 0, nil
}

// subscribe makes w receive live events after revision minRev. s.mu is held.
func (s *Store) subscribe(w *watcher, minRev int64) {
	w.synced = true
	w.minRev = minRev
	s.watchIdx[w.prefix] = append(s.watchIdx[w.prefix], w)
}

// unregister forgets w. It takes s.mu.
func (s *Store) unregister(w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers, w)
	if !w.synced {
		return
	}
	w.synced = false
	ws := s.watchIdx[w.prefix]
	for i, x := range ws {
		if x == w {
			ws[i] = ws[len(ws)-1]
			ws[len(ws)-1] = nil
			ws = ws[:len(ws)-1]
			break
		}
	}
	if len(ws) == 0 {
		delete(s.watchIdx, w.prefix)
	} else {
		s.watchIdx[w.prefix] = ws
	}
}

// fanout pushes the single event of a revision to the subscribed watchers
// whose prefix covers its key. s.mu is held.
func (s *Store) fanout(e *logEntry) {
	if len(s.watchIdx) == 0 {
		return
	}
	key := e.kh.key
	for i := 0; i < len(key); i++ {
		if key[i] != '/' {
			continue
		}
		for _, w := range s.watchIdx[key[:i+1]] {
			if e.rev() > w.minRev {
				w.push(*e)
			}
		}
	}
}

// fanoutBatch pushes the events of one revision that changed several keys,
// each watcher receiving the ones it matches in one push. s.mu is held.
func (s *Store) fanoutBatch(es []logEntry) {
	if len(s.watchIdx) == 0 {
		return
	}
	groups := map[*watcher][]logEntry{}
	for _, e := range es {
		key := e.kh.key
		for i := 0; i < len(key); i++ {
			if key[i] != '/' {
				continue
			}
			for _, w := range s.watchIdx[key[:i+1]] {
				if e.rev() > w.minRev {
					groups[w] = append(groups[w], e)
				}
			}
		}
	}
	for w, g := range groups {
		w.push(g...)
	}
}
