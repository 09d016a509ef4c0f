package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubelab/kubelab/spec"
)

// Watch implements spec.Store with one etcd watch over the directory prefix
// (WithPrefix, WithPrevKV, WithRequireLeader), starting at afterRevision+1.
// For afterRevision 0 it first reads the current revision R and watches from
// R+1, so every change committed after Watch was called is delivered even
// though etcd registers the watch asynchronously.
//
// Each etcd watch response becomes one batch: etcd never splits a revision
// across responses (the watch does not ask for fragments), so batches hold
// whole revisions. A PUT whose create and mod revisions are equal is
// EventCreated, any other PUT EventUpdated; a DELETE (including a lease
// expiry) is EventDeleted with KV.Key and KV.ModRevision set. PrevKV is nil
// for an update or delete whose previous revision etcd had already compacted.
//
// The events of a watch pass through a buffer of Options.WatchBuffer batches
// that one goroutine fills from etcd without ever blocking, so a slow
// consumer never holds up etcd's stream nor other watches; when the buffer
// is full the watch ends with an error event wrapping ErrWatcherTooSlow.
// Compaction ends it with ErrCompacted, Close with ErrClosed, a lost leader or
// connection with etcd's error.
func (s *Store) Watch(ctx context.Context, prefix string, afterRevision int64) (spec.Watcher, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	dir, err := spec.DirPrefix(prefix)
	if err != nil {
		return nil, err
	}
	if err := spec.ValidateRevision("after revision", afterRevision); err != nil {
		return nil, err
	}
	if afterRevision == 0 {
		if afterRevision, err = s.listRevision(ctx, 0); err != nil {
			return nil, s.wrapErr(ctx, fmt.Sprintf("watch %q", dir), err)
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{
		store:  s,
		dir:    dir,
		ctx:    wctx,
		cancel: cancel,
		out:    make(chan []spec.Event, s.watchBuffer+1), // +1: room for the final error
		ending: make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("etcd store: %w", spec.ErrClosed)
	}
	s.watchers[w] = struct{}{}
	s.watchWG.Add(1)
	s.mu.Unlock()

	ch := s.client.Watch(clientv3.WithRequireLeader(wctx), dir,
		clientv3.WithPrefix(), clientv3.WithRev(afterRevision+1), clientv3.WithPrevKV())
	go w.run(ch)
	return w, nil
}

// watcher is one open watch. Its goroutine (run) is the only sender on out
// and never blocks on it: it sends a batch only while at least two slots are
// free, so the last slot is always there for the final error event.
type watcher struct {
	store  *Store
	dir    string
	ctx    context.Context // cancelled by Stop or the caller's ctx
	cancel context.CancelFunc
	out    chan []spec.Event

	endOnce sync.Once
	ending  chan struct{} // closed by Store.Close: end with ErrClosed
	done    chan struct{} // closed when run has returned
}

var _ spec.Watcher = (*watcher)(nil)

// Events implements spec.Watcher.
func (w *watcher) Events() <-chan []spec.Event { return w.out }

// Stop implements spec.Watcher. It returns once the watch's goroutine has
// ended and its channel is closed.
func (w *watcher) Stop() {
	w.cancel()
	<-w.done
}

// end asks the watch to finish with ErrClosed; Store.Close calls it with
// the store's mutex held.
func (w *watcher) end() { w.endOnce.Do(func() { close(w.ending) }) }

func (w *watcher) run(ch clientv3.WatchChan) {
	defer func() {
		// Cancelling the watch's ctx is all etcd's client needs to let go of
		// it; its channel is not drained, as the client closes it only once
		// it can reach a server again.
		w.cancel()
		w.store.mu.Lock()
		delete(w.store.watchers, w)
		w.store.mu.Unlock()
		close(w.out)
		close(w.done)
		w.store.watchWG.Done()
	}()
	for {
		select {
		case <-w.ending:
			w.fail(fmt.Errorf("watch %q: %w", w.dir, spec.ErrClosed))
			return
		case <-w.ctx.Done():
			return
		case resp, ok := <-ch:
			if !ok {
				if w.ctx.Err() == nil {
					w.fail(w.streamErr(errors.New("etcd closed the watch")))
				}
				return
			}
			if err := resp.Err(); err != nil {
				if w.ctx.Err() == nil {
					w.fail(w.respErr(&resp, err))
				}
				return
			}
			if len(resp.Events) == 0 {
				continue // created or progress notification
			}
			if len(w.out) >= cap(w.out)-1 {
				w.fail(fmt.Errorf("watch %q: %d batches undelivered: %w", w.dir, len(w.out), spec.ErrWatcherTooSlow))
				return
			}
			w.out <- events(resp.Events)
		}
	}
}

// fail sends the final error event; run then returns and closes out.
func (w *watcher) fail(err error) {
	w.out <- []spec.Event{{Type: spec.EventError, Err: err}}
}

// respErr is the error of a watch response that ends the watch.
func (w *watcher) respErr(resp *clientv3.WatchResponse, err error) error {
	if resp.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("watch %q: revisions before %d are compacted: %w", w.dir, resp.CompactRevision, spec.ErrCompacted)
	}
	return w.streamErr(err)
}

// streamErr is err, or ErrClosed when the store was closed meanwhile.
func (w *watcher) streamErr(err error) error {
	if w.store.closed.Load() {
		return fmt.Errorf("watch %q: %w (%v)", w.dir, spec.ErrClosed, err)
	}
	return fmt.Errorf("etcd store: watch %q: %w", w.dir, err)
}

// events converts the events of one etcd watch response.
func events(evs []*clientv3.Event) []spec.Event {
	batch := make([]spec.Event, len(evs))
	for i, ev := range evs {
		e := &batch[i]
		if ev.PrevKv != nil {
			prev := keyValue(ev.PrevKv)
			e.PrevKV = &prev
		}
		switch {
		case ev.Type == mvccpb.DELETE:
			e.Type = spec.EventDeleted
			e.KV = spec.KeyValue{Key: string(ev.Kv.Key), ModRevision: ev.Kv.ModRevision}
		case ev.Kv.CreateRevision == ev.Kv.ModRevision:
			e.Type = spec.EventCreated
			e.KV = keyValue(ev.Kv)
			e.PrevKV = nil
		default:
			e.Type = spec.EventUpdated
			e.KV = keyValue(ev.Kv)
		}
	}
	return batch
}
