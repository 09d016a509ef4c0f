package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

// model is a naive reference store: a full snapshot per revision and the
// rendered events of every revision. The store must agree with it on every
// read at every revision it still retains.
type model struct {
	rev     int64
	compact int64
	snaps   map[int64]map[string]spec.KeyValue
	events  map[int64]spec.Event
}

func newModel() *model {
	return &model{rev: 1, snaps: map[int64]map[string]spec.KeyValue{1: {}}, events: map[int64]spec.Event{}}
}

func (m *model) cur() map[string]spec.KeyValue { return m.snaps[m.rev] }

// commit records a write of kv (or the delete of kv.Key when deleted) at
// the next revision.
func (m *model) commit(ev spec.Event, history int64) {
	next := maps.Clone(m.cur())
	m.rev++
	if ev.Type == spec.EventDeleted {
		delete(next, ev.KV.Key)
	} else {
		next[ev.KV.Key] = ev.KV
	}
	m.snaps[m.rev] = next
	m.events[m.rev] = ev
	if history > 0 && m.rev-history+1 > m.compact {
		m.compact = m.rev - history + 1
	}
}

func (m *model) list(prefix string, rev int64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m.snaps[rev])) {
		if kv := m.snaps[rev][k]; strings.HasPrefix(k, prefix) {
			out = append(out, fmt.Sprintf("%s=%s@%d", k, kv.Value, kv.ModRevision))
		}
	}
	return out
}

func TestAgainstModel(t *testing.T) {
	tests := []struct {
		name    string
		history int64
		keys    int
		ops     int
		seed    uint64
	}{
		{"few keys short history", 8, 4, 3000, 1},
		{"many keys short history", 16, 64, 3000, 2},
		{"unlimited history with explicit compaction", -1, 16, 3000, 3},
		{"history longer than the run", 100000, 8, 2000, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runModel(t, tc.history, tc.keys, tc.ops, tc.seed)
		})
	}
}

func runModel(t *testing.T, history int64, nkeys, ops int, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed))
	s := newStore(t, Options{HistoryRevisions: history})
	m := newModel()
	prefixes := []string{"/", "/m", "/m/sub", "/n"}
	key := func() string {
		i := rng.IntN(nkeys)
		switch i % 3 {
		case 0:
			return fmt.Sprintf("/m/%d", i)
		case 1:
			return fmt.Sprintf("/m/sub/%d", i)
		}
		return fmt.Sprintf("/n/%d", i)
	}
	// expected picks an expected mod revision: none, right, or wrong.
	expected := func(kv spec.KeyValue, ok bool) int64 {
		switch rng.IntN(3) {
		case 0:
			return 0
		case 1:
			if ok {
				return kv.ModRevision
			}
		}
		return 1 + rng.Int64N(m.rev+2)
	}
	check := func(op string, err, want error) {
		t.Helper()
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("rev %d: %s: error %v, want %v", m.rev, op, err, want)
		}
	}

	for i := range ops {
		k := key()
		cur, exists := m.cur()[k]
		val := fmt.Appendf(nil, "v%d", i)
		switch r := rng.IntN(20); {
		case r < 5:
			rev, err := s.Create(ctx, k, val, spec.CreateOptions{})
			if exists {
				check("create "+k, err, spec.ErrAlreadyExists)
				break
			}
			check("create "+k, err, nil)
			kv := spec.KeyValue{Key: k, Value: val, CreateRevision: m.rev + 1, ModRevision: m.rev + 1}
			m.commit(spec.Event{Type: spec.EventCreated, KV: kv}, history)
			if rev != m.rev {
				t.Fatalf("create at %d, want %d", rev, m.rev)
			}
		case r < 10:
			exp := expected(cur, exists)
			_, err := s.Update(ctx, k, val, exp)
			switch {
			case !exists:
				check("update "+k, err, spec.ErrNotFound)
			case exp != 0 && exp != cur.ModRevision:
				check("update "+k, err, spec.ErrConflict)
			default:
				check("update "+k, err, nil)
				prev := cur
				kv := spec.KeyValue{Key: k, Value: val, CreateRevision: cur.CreateRevision, ModRevision: m.rev + 1}
				m.commit(spec.Event{Type: spec.EventUpdated, KV: kv, PrevKV: &prev}, history)
			}
		case r < 13:
			exp := expected(cur, exists)
			last, _, err := s.Delete(ctx, k, exp)
			switch {
			case !exists:
				check("delete "+k, err, spec.ErrNotFound)
			case exp != 0 && exp != cur.ModRevision:
				check("delete "+k, err, spec.ErrConflict)
			default:
				check("delete "+k, err, nil)
				if !equalKV(last, cur) {
					t.Fatalf("delete returned %+v, want %+v", last, cur)
				}
				prev := cur
				m.commit(spec.Event{Type: spec.EventDeleted, KV: spec.KeyValue{Key: k, ModRevision: m.rev + 1}, PrevKV: &prev}, history)
			}
		case r < 15:
			kv, err := s.Get(ctx, k)
			if !exists {
				check("get "+k, err, spec.ErrNotFound)
			} else if check("get "+k, err, nil); !equalKV(kv, cur) {
				t.Fatalf("get %s = %+v, want %+v", k, kv, cur)
			}
		case r < 18:
			prefix := prefixes[rng.IntN(len(prefixes))]
			rev := max(m.compact-1, 0) + rng.Int64N(m.rev-max(m.compact-1, 0)+2)
			limit := rng.Int64N(4)
			var got []string
			opts := spec.ListOptions{Revision: rev, Limit: limit}
			for {
				res, err := s.List(ctx, prefix, opts)
				switch {
				case rev > m.rev:
					check("list", err, spec.ErrFutureRevision)
				case rev != 0 && rev < m.compact:
					check("list", err, spec.ErrCompacted)
				default:
					check("list", err, nil)
				}
				if err != nil {
					break
				}
				got = append(got, kvStrings(res.Items)...)
				if !res.More {
					rev = res.Revision
					if want := m.list(dirOf(prefix), rev); !slices.Equal(got, want) {
						t.Fatalf("list %q at %d (limit %d) = %q, want %q", prefix, rev, limit, got, want)
					}
					break
				}
				opts.Revision = res.Revision
				opts.After = res.Items[len(res.Items)-1].Key
			}
		case r < 19:
			prefix := prefixes[rng.IntN(len(prefixes))]
			after := max(m.compact-2, 0) + rng.Int64N(m.rev-max(m.compact-2, 0)+1)
			w, err := s.Watch(ctx, prefix, after)
			if after > 0 && after+1 < m.compact {
				check("watch", err, spec.ErrCompacted)
				break
			}
			check("watch", err, nil)
			var want []string
			if after > 0 {
				for rev := after + 1; rev <= m.rev; rev++ {
					if ev := m.events[rev]; strings.HasPrefix(ev.KV.Key, dirOf(prefix)) {
						want = append(want, eventString(ev))
					}
				}
			}
			var got []string
			for _, ev := range receive(t, w, len(want)) {
				got = append(got, eventString(ev))
			}
			w.Stop()
			if !slices.Equal(got, want) {
				t.Fatalf("watch %q after %d:\n got %q\nwant %q", prefix, after, got, want)
			}
		default:
			rev := max(m.compact-1, 0) + rng.Int64N(m.rev-max(m.compact-1, 0)+2)
			err := s.Compact(ctx, rev)
			switch {
			case rev <= m.compact:
				check("compact", err, spec.ErrCompacted)
			case rev > m.rev:
				check("compact", err, spec.ErrFutureRevision)
			default:
				check("compact", err, nil)
				m.compact = rev
			}
		}
		if got := mustRevision(t, s); got != m.rev {
			t.Fatalf("op %d: revision %d, want %d", i, got, m.rev)
		}
	}

	// Nothing outlives its usefulness: retained keys are exactly those live
	// or with a version visible at some revision >= the compacted one.
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, kh := range s.keys {
		if len(kh.versions) == 0 {
			t.Errorf("key %s kept with an empty history", k)
		}
		if first := kh.versions[0]; first.deleted && first.mod <= s.compactRev {
			t.Errorf("key %s keeps a compacted tombstone at %d (compacted %d)", k, first.mod, s.compactRev)
		}
		if len(kh.versions) > 1 && kh.versions[1].mod <= s.compactRev {
			t.Errorf("key %s keeps two versions at or below the compacted revision %d: %+v", k, s.compactRev, kh.versions)
		}
	}
}

func dirOf(prefix string) string {
	d, _ := spec.DirPrefix(prefix)
	return d
}
