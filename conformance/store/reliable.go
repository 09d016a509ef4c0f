package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// The scale of the reliability spec: every watcher must see
// reliableWriters*reliableWrites events (plus a barrier).
const (
	reliableWatchers = 100
	reliableWriters  = 10
	reliableWrites   = 1000 // per writer
	// Every reliableSlowEvery-th watcher stalls now and then, to make a
	// store buffer for it or cut it off.
	reliableSlowEvery = 20
)

// seenEvent is what the reliability spec keeps of an event.
type seenEvent struct {
	rev int64
	typ spec.EventType
	key string
}

func (e seenEvent) String() string { return fmt.Sprintf("%s %s @%d", e.typ, e.key, e.rev) }

// resumingWatch follows a prefix like a careful client: when the store cuts
// it off with ErrWatcherTooSlow it resumes from the last revision received.
type resumingWatch struct {
	done chan struct{}

	mu      sync.Mutex // guards the fields below
	events  []seenEvent
	last    int64 // revision of the last event received
	cutoffs int   // ErrWatcherTooSlow received
	err     error // any other error, which ends the watch
}

// followPrefix starts a resumingWatch of prefix after revision from; stall,
// when positive, makes it pause that long every 500 events. It ends when
// ctx is cancelled.
func followPrefix(ctx context.Context, s spec.Store, prefix string, from int64, stall time.Duration) *resumingWatch {
	rw := &resumingWatch{done: make(chan struct{}), last: from}
	go func() {
		defer close(rw.done)
		for ctx.Err() == nil {
			if err := rw.follow(ctx, s, prefix, stall); err != nil {
				rw.mu.Lock()
				rw.err = err
				rw.mu.Unlock()
				return
			}
		}
	}()
	return rw
}

// follow runs one watch until it ends; it returns nil when the watch may be
// resumed.
func (rw *resumingWatch) follow(ctx context.Context, s spec.Store, prefix string, stall time.Duration) error {
	rw.mu.Lock()
	from := rw.last
	rw.mu.Unlock()
	w, err := s.Watch(ctx, prefix, from)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("Watch(%q, after %d): %w", prefix, from, err)
	}
	defer w.Stop()
	n := 0
	for batch := range w.Events() {
		var tooSlow bool
		var failed error
		rw.mu.Lock()
		for _, ev := range batch {
			if ev.Type == spec.EventError {
				if errors.Is(ev.Err, spec.ErrWatcherTooSlow) {
					rw.cutoffs++
					tooSlow = true
				} else {
					failed = fmt.Errorf("watch after %d ended: %w", from, ev.Err)
				}
				break
			}
			rw.events = append(rw.events, seenEvent{ev.Revision(), ev.Type, ev.KV.Key})
			rw.last = max(rw.last, ev.Revision())
		}
		rw.mu.Unlock()
		if tooSlow || failed != nil {
			return failed
		}
		if n += len(batch); stall > 0 && n >= 500 {
			n = 0
			time.Sleep(stall)
		}
	}
	if ctx.Err() == nil {
		return fmt.Errorf("watch after %d: channel closed without an error event", from)
	}
	return nil
}

func (rw *resumingWatch) progress() (last int64, err error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.last, rw.err
}

// mismatch compares what a watcher saw with what it must see and describes
// the first difference ("" if none).
func mismatch(got, want []seenEvent) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("event %d of %d is %v, want %v (received %d events)", i, len(want), got[i], want[i], len(got))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("received %d events, want %d", len(got), len(want))
	}
	return ""
}

func describeReliableWatch(t Target) {
	Describe("Store watch under load", func() {
		f := newFixture(t)

		It("delivers every event to each of many watchers while writers run concurrently", harness.Labels(CapWatchReliable, harness.LabelSlow), func(ctx SpecContext) {
			AddReportEntry("scale", fmt.Sprintf("%d watchers, %d writers x %d writes", reliableWatchers, reliableWriters, reliableWrites))
			from := f.revision(ctx)
			wctx, cancel := context.WithCancel(ctx)
			watchers := make([]*resumingWatch, reliableWatchers)
			for i := range watchers {
				var stall time.Duration
				if i%reliableSlowEvery == 0 {
					stall = 20 * time.Millisecond
				}
				watchers[i] = followPrefix(wctx, f.store, f.prefix, from, stall)
			}
			DeferCleanup(func() {
				cancel()
				for _, w := range watchers {
					select {
					case <-w.done:
					case <-time.After(stopTimeout):
						Fail(fmt.Sprintf("a watcher did not end %v after its context was cancelled", stopTimeout))
					}
				}
			})

			j := newJournal(f.store)
			Expect(j.churn(ctx, f.key("load"), reliableWriters, reliableWrites)).To(Succeed())
			barrier, err := j.create(ctx, f.key("barrier"), "b")
			Expect(err).NotTo(HaveOccurred())

			By("waiting for every watcher to reach the last write")
			Eventually(ctx, func() error {
				behind := 0
				for i, w := range watchers {
					last, err := w.progress()
					if err != nil {
						return StopTrying(fmt.Sprintf("watcher %d failed", i)).Wrap(err)
					}
					if last < barrier {
						behind++
					}
				}
				if behind > 0 {
					return fmt.Errorf("%d of %d watchers have not reached revision %d", behind, len(watchers), barrier)
				}
				return nil
			}).WithTimeout(3 * time.Minute).WithPolling(50 * time.Millisecond).Should(Succeed())

			j.mu.Lock()
			want := make([]seenEvent, 0, len(j.events))
			for _, ev := range j.events {
				want = append(want, seenEvent{ev.Revision(), ev.Type, ev.KV.Key})
			}
			j.mu.Unlock()
			slices.SortFunc(want, func(a, b seenEvent) int { return cmp.Compare(a.rev, b.rev) })

			cutoffs := 0
			for i, w := range watchers {
				w.mu.Lock()
				got := slices.Clone(w.events)
				cutoffs += w.cutoffs
				w.mu.Unlock()
				if d := mismatch(got, want); d != "" {
					Fail(fmt.Sprintf("watcher %d did not see every event exactly once in order: %s", i, d))
				}
			}
			AddReportEntry("cut-offs", fmt.Sprintf("%d watchers were cut off with ErrWatcherTooSlow and resumed", cutoffs))
		}, SpecTimeout(5*time.Minute))
	})
}
