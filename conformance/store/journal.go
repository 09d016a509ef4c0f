package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/kubelab/kubelab/spec"
)

// journal performs writes and records the watch event each successful one
// must produce, with its previous state. Writers may share a journal as long
// as no two of them write the same key at the same time.
type journal struct {
	s spec.Store

	mu     sync.Mutex               // guards the fields below
	state  map[string]spec.KeyValue // current state of every key written
	events []spec.Event             // one per successful write, in order of return
}

func newJournal(s spec.Store) *journal {
	return &journal{s: s, state: map[string]spec.KeyValue{}}
}

func (j *journal) create(ctx context.Context, key, value string) (int64, error) {
	rev, err := j.s.Create(ctx, key, []byte(value), spec.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("Create(%q): %w", key, err)
	}
	cur := kv(key, value, rev, rev)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.state[key] = cur
	j.events = append(j.events, spec.Event{Type: spec.EventCreated, KV: cur})
	return rev, nil
}

func (j *journal) update(ctx context.Context, key, value string, expected int64) (int64, error) {
	rev, err := j.s.Update(ctx, key, []byte(value), expected)
	if err != nil {
		return 0, fmt.Errorf("Update(%q, expected %d): %w", key, expected, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	prev := j.state[key]
	cur := kv(key, value, prev.CreateRevision, rev)
	j.state[key] = cur
	j.events = append(j.events, spec.Event{Type: spec.EventUpdated, KV: cur, PrevKV: &prev})
	return rev, nil
}

func (j *journal) delete(ctx context.Context, key string, expected int64) (int64, error) {
	_, rev, err := j.s.Delete(ctx, key, expected)
	if err != nil {
		return 0, fmt.Errorf("Delete(%q, expected %d): %w", key, expected, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	prev := j.state[key]
	delete(j.state, key)
	j.events = append(j.events, spec.Event{Type: spec.EventDeleted, KV: spec.KeyValue{Key: key, ModRevision: rev}, PrevKV: &prev})
	return rev, nil
}

// modRevision returns key's ModRevision as last written through the journal.
func (j *journal) modRevision(key string) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state[key].ModRevision
}

// after returns the descriptions of the recorded events committed after
// revision rev, in revision order.
func (j *journal) after(rev int64) []string {
	j.mu.Lock()
	evs := slices.Clone(j.events)
	j.mu.Unlock()
	slices.SortStableFunc(evs, func(a, b spec.Event) int { return cmp.Compare(a.Revision(), b.Revision()) })
	var out []string
	for _, ev := range evs {
		if ev.Revision() > rev {
			out = append(out, describeEvent(ev))
		}
	}
	return out
}

// last returns the revision of the last write recorded.
func (j *journal) last() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var last int64
	for _, ev := range j.events {
		last = max(last, ev.Revision())
	}
	return last
}

// churn runs writers goroutines that each make n writes to keys of their own
// under dir, cycling through create, update (compare-and-swap every other
// time) and delete, and returns the first error.
func (j *journal) churn(ctx context.Context, dir string, writers, n int) error {
	const keysPerWriter = 4
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			errs <- func() error {
				for i := range n {
					key := fmt.Sprintf("%s/w%d/k%d", dir, w, i%keysPerWriter)
					var err error
					switch round := i / keysPerWriter; round % 3 {
					case 0:
						_, err = j.create(ctx, key, fmt.Sprintf("c%d", i))
					case 1:
						var expected int64
						if round%2 == 1 {
							expected = j.modRevision(key)
						}
						_, err = j.update(ctx, key, fmt.Sprintf("u%d", i), expected)
					case 2:
						_, err = j.delete(ctx, key, 0)
					}
					if err != nil {
						return fmt.Errorf("writer %d: %w", w, err)
					}
				}
				return nil
			}()
		}()
	}
	var first error
	for range writers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
