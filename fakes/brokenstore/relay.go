package brokenstore

import (
	"sync"

	"github.com/kubelab/kubelab/spec"
)

// relay is a spec.Watcher fed by a goroutine of its own: the wrappers use it
// to pass a base watch's batches through a change.
type relay struct {
	ch       chan []spec.Event
	stopCh   chan struct{} // closed by Stop
	stopOnce sync.Once
	failCh   chan error    // capacity 1: ends the relay with an error event
	done     chan struct{} // closed when ch is closed
}

func newRelay() *relay {
	return &relay{
		ch:     make(chan []spec.Event),
		stopCh: make(chan struct{}),
		failCh: make(chan error, 1),
		done:   make(chan struct{}),
	}
}

// Events returns the channel of batches.
func (r *relay) Events() <-chan []spec.Event { return r.ch }

// Stop ends the relay; the channel is closed soon after.
func (r *relay) Stop() { r.stopOnce.Do(func() { close(r.stopCh) }) }

// fail ends the relay with one error event carrying err, unless it has
// already ended.
func (r *relay) fail(err error) {
	select {
	case r.failCh <- err:
	default:
	}
}

// run forwards the batches of base, changed by change (which may drop
// events; empty batches are not sent), until base ends, the relay is stopped
// or failed. It closes the relay's channel when done.
func (r *relay) run(base spec.Watcher, change func([]spec.Event) []spec.Event) {
	defer close(r.done)
	defer close(r.ch)
	defer base.Stop()
	for {
		select {
		case batch, ok := <-base.Events():
			if !ok {
				return
			}
			if batch = change(batch); len(batch) == 0 {
				continue
			}
			if !r.send(batch) {
				return
			}
		case err := <-r.failCh:
			r.send([]spec.Event{{Type: spec.EventError, Err: err}})
			return
		case <-r.stopCh:
			return
		}
	}
}

// send delivers batch unless the relay is stopped or failed first.
func (r *relay) send(batch []spec.Event) bool {
	select {
	case r.ch <- batch:
		return true
	case err := <-r.failCh:
		select {
		case r.ch <- []spec.Event{{Type: spec.EventError, Err: err}}:
		case <-r.stopCh:
		}
		return false
	case <-r.stopCh:
		return false
	}
}

// forward returns a Watcher relaying base's batches through change.
func forward(base spec.Watcher, change func([]spec.Event) []spec.Event) *relay {
	r := newRelay()
	go r.run(base, change)
	return r
}

// same is the change that changes nothing.
func same(b []spec.Event) []spec.Event { return b }
