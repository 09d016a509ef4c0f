package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubelab/kubelab/spec"
)

func TestFreshStore(t *testing.T) {
	s := newStore(t, Options{})
	if rev := mustRevision(t, s); rev != 1 {
		t.Fatalf("fresh revision %d, want 1", rev)
	}
	res, err := s.List(t.Context(), "/", spec.ListOptions{})
	if err != nil || len(res.Items) != 0 || res.Revision != 1 || res.More {
		t.Fatalf("List on fresh store = %+v, %v", res, err)
	}
}

// TestSentinels runs one operation against a store prepared by setup and
// checks the sentinel it returns.
func TestSentinels(t *testing.T) {
	ctx := context.Background()
	get := func(key string) func(*Store) error {
		return func(s *Store) error { _, err := s.Get(ctx, key); return err }
	}
	create := func(key string) func(*Store) error {
		return func(s *Store) error { _, err := s.Create(ctx, key, []byte("v"), spec.CreateOptions{}); return err }
	}
	update := func(key string, expected int64) func(*Store) error {
		return func(s *Store) error { _, err := s.Update(ctx, key, []byte("v2"), expected); return err }
	}
	del := func(key string, expected int64) func(*Store) error {
		return func(s *Store) error { _, _, err := s.Delete(ctx, key, expected); return err }
	}
	present := func(t *testing.T, s *Store) { mustCreate(t, s, "/k", "v") } // at revision 2
	deleted := func(t *testing.T, s *Store) { mustCreate(t, s, "/k", "v"); mustDelete(t, s, "/k") }

	tests := []struct {
		name    string
		setup   func(*testing.T, *Store)
		op      func(*Store) error
		wantErr error
	}{
		{"get missing", nil, get("/k"), spec.ErrNotFound},
		{"get present", present, get("/k"), nil},
		{"get deleted", deleted, get("/k"), spec.ErrNotFound},
		{"get parent of present key", present, get("/"), spec.ErrNotFound},
		{"create new", nil, create("/k"), nil},
		{"create present", present, create("/k"), spec.ErrAlreadyExists},
		{"create deleted", deleted, create("/k"), nil},
		{"update missing", nil, update("/k", 0), spec.ErrNotFound},
		{"update missing with expected revision", nil, update("/k", 2), spec.ErrNotFound},
		{"update deleted with its old revision", deleted, update("/k", 2), spec.ErrNotFound},
		{"update present", present, update("/k", 0), nil},
		{"update present matching", present, update("/k", 2), nil},
		{"update present stale", present, update("/k", 1), spec.ErrConflict},
		{"update present future", present, update("/k", 99), spec.ErrConflict},
		{"delete missing", nil, del("/k", 0), spec.ErrNotFound},
		{"delete missing with expected revision", nil, del("/k", 5), spec.ErrNotFound},
		{"delete deleted", deleted, del("/k", 0), spec.ErrNotFound},
		{"delete present", present, del("/k", 0), nil},
		{"delete present matching", present, del("/k", 2), nil},
		{"delete present stale", present, del("/k", 1), spec.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			if tc.setup != nil {
				tc.setup(t, s)
			}
			before := mustRevision(t, s)
			err := tc.op(s)
			wantErr(t, "op", err, tc.wantErr)
			after := mustRevision(t, s)
			if tc.wantErr != nil && after != before {
				t.Fatalf("failed op moved the revision from %d to %d", before, after)
			}
		})
	}
}

func TestCRUDRevisions(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})

	r1 := mustCreate(t, s, "/k", "one")
	kv, err := s.Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if want := (spec.KeyValue{Key: "/k", Value: []byte("one"), CreateRevision: r1, ModRevision: r1}); !equalKV(kv, want) {
		t.Fatalf("after create: %+v, want %+v", kv, want)
	}

	r2 := mustUpdate(t, s, "/k", "two")
	if r2 <= r1 {
		t.Fatalf("update revision %d not above create revision %d", r2, r1)
	}
	kv, _ = s.Get(ctx, "/k")
	if want := (spec.KeyValue{Key: "/k", Value: []byte("two"), CreateRevision: r1, ModRevision: r2}); !equalKV(kv, want) {
		t.Fatalf("after update: %+v, want %+v", kv, want)
	}

	last, r3, err := s.Delete(ctx, "/k", r2)
	if err != nil {
		t.Fatal(err)
	}
	if !equalKV(last, kv) || r3 <= r2 {
		t.Fatalf("Delete = %+v at %d, want %+v above %d", last, r3, kv, r2)
	}
	if rev := mustRevision(t, s); rev != r3 {
		t.Fatalf("Revision %d, want %d", rev, r3)
	}

	r4 := mustCreate(t, s, "/k", "")
	kv, _ = s.Get(ctx, "/k")
	if want := (spec.KeyValue{Key: "/k", Value: []byte{}, CreateRevision: r4, ModRevision: r4}); !equalKV(kv, want) || kv.Value == nil {
		t.Fatalf("after re-create with an empty value: %+v, want %+v (non-nil value)", kv, want)
	}
}

func TestCASConflictWritesNothing(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})
	rev := mustCreate(t, s, "/k", "v1")
	w := mustWatch(t, s, "/", 0)

	if _, err := s.Update(ctx, "/k", []byte("bad"), rev+1); !errors.Is(err, spec.ErrConflict) {
		t.Fatalf("stale Update: %v", err)
	}
	if _, _, err := s.Delete(ctx, "/k", rev-1); !errors.Is(err, spec.ErrConflict) {
		t.Fatalf("stale Delete: %v", err)
	}
	kv, _ := s.Get(ctx, "/k")
	if string(kv.Value) != "v1" || kv.ModRevision != rev || mustRevision(t, s) != rev {
		t.Fatalf("conflicting writes changed the store: %+v, revision %d", kv, mustRevision(t, s))
	}
	checkQuiet(t, w)

	// Two writers racing from the same revision: exactly one wins.
	results := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := s.Update(ctx, "/k", []byte(fmt.Sprint(i)), rev)
			results <- err
		}()
	}
	var won, lost int
	for range 2 {
		if err := <-results; err == nil {
			won++
		} else if errors.Is(err, spec.ErrConflict) {
			lost++
		} else {
			t.Fatalf("racing update: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("racing CAS: %d won, %d lost; want 1 and 1", won, lost)
	}
}

func TestListAtRevision(t *testing.T) {
	s := newStore(t, Options{})
	rA := mustCreate(t, s, "/p/a", "a1")
	rB := mustCreate(t, s, "/p/b", "b1")
	rA2 := mustUpdate(t, s, "/p/a", "a2")
	rDelB := mustDelete(t, s, "/p/b")
	rC := mustCreate(t, s, "/p/c", "c1")
	rB2 := mustCreate(t, s, "/p/b", "b2")

	tests := []struct {
		name string
		rev  int64
		want []string // key=value@mod
	}{
		{"before any write", 1, nil},
		{"after first create", rA, []string{"/p/a=a1@" + fmt.Sprint(rA)}},
		{"after second create", rB, []string{"/p/a=a1@" + fmt.Sprint(rA), "/p/b=b1@" + fmt.Sprint(rB)}},
		{"after update", rA2, []string{"/p/a=a2@" + fmt.Sprint(rA2), "/p/b=b1@" + fmt.Sprint(rB)}},
		{"after delete", rDelB, []string{"/p/a=a2@" + fmt.Sprint(rA2)}},
		{"after third create", rC, []string{"/p/a=a2@" + fmt.Sprint(rA2), "/p/c=c1@" + fmt.Sprint(rC)}},
		{"after re-create", rB2, []string{"/p/a=a2@" + fmt.Sprint(rA2), "/p/b=b2@" + fmt.Sprint(rB2), "/p/c=c1@" + fmt.Sprint(rC)}},
		{"current (0)", 0, []string{"/p/a=a2@" + fmt.Sprint(rA2), "/p/b=b2@" + fmt.Sprint(rB2), "/p/c=c1@" + fmt.Sprint(rC)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.List(t.Context(), "/p", spec.ListOptions{Revision: tc.rev})
			if err != nil {
				t.Fatal(err)
			}
			wantRev := tc.rev
			if wantRev == 0 {
				wantRev = rB2
			}
			if res.Revision != wantRev || res.More {
				t.Fatalf("Revision %d More %v, want %d false", res.Revision, res.More, wantRev)
			}
			if got := kvStrings(res.Items); !slices.Equal(got, tc.want) {
				t.Fatalf("items %q, want %q", got, tc.want)
			}
		})
	}

	_, err := s.List(t.Context(), "/p", spec.ListOptions{Revision: rB2 + 1})
	wantErr(t, "List at a future revision", err, spec.ErrFutureRevision)
}

func TestListPaging(t *testing.T) {
	s := newStore(t, Options{})
	const n = 25
	for i := range n {
		mustCreate(t, s, fmt.Sprintf("/pg/%02d", i), fmt.Sprint(i))
	}
	mustCreate(t, s, "/pg-outside", "x")
	mustCreate(t, s, "/pgz/x", "x")
	full, err := s.List(t.Context(), "/pg", spec.ListOptions{})
	if err != nil || len(full.Items) != n {
		t.Fatalf("full list: %d items, %v", len(full.Items), err)
	}

	tests := []struct {
		name  string
		limit int64
	}{
		{"limit 1", 1},
		{"limit 7", 7},
		{"limit divides", 5},
		{"limit equals size", n},
		{"limit above size", n + 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []spec.KeyValue
			opts := spec.ListOptions{Limit: tc.limit}
			for pages := 0; ; pages++ {
				if pages > n+1 {
					t.Fatalf("paging does not end")
				}
				res, err := s.List(t.Context(), "/pg", opts)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(res.Items)) > tc.limit {
					t.Fatalf("page of %d items over limit %d", len(res.Items), tc.limit)
				}
				got = append(got, res.Items...)
				// Writes between pages must not show in a paged list.
				mustUpdate(t, s, "/pg/00", fmt.Sprint("churn", pages))
				mustCreate(t, s, fmt.Sprintf("/pg/%02d-new-%s", pages, strings.ReplaceAll(tc.name, " ", "")), "new")
				if !res.More {
					break
				}
				if len(res.Items) == 0 {
					t.Fatalf("More with an empty page")
				}
				opts.Revision = res.Revision
				opts.After = res.Items[len(res.Items)-1].Key
			}
			if a, b := kvStrings(got), kvStrings(full.Items); !slices.Equal(a, b) {
				t.Fatalf("paged list %q, want %q", a, b)
			}
		})
		// Later cases page a larger current list: refresh the reference.
		full, _ = s.List(t.Context(), "/pg", spec.ListOptions{})
	}

	t.Run("after outside the prefix", func(t *testing.T) {
		res, err := s.List(t.Context(), "/pg", spec.ListOptions{After: "/pa", Limit: 2})
		if err != nil || len(res.Items) != 2 || res.Items[0].Key != "/pg/00" || !res.More {
			t.Fatalf("List after a key before the prefix: %v %v", kvStrings(res.Items), err)
		}
		res, err = s.List(t.Context(), "/pg", spec.ListOptions{After: "/pz"})
		if err != nil || len(res.Items) != 0 || res.More {
			t.Fatalf("List after a key past the prefix: %v %v", kvStrings(res.Items), err)
		}
	})
}

func TestPrefixIsolation(t *testing.T) {
	s := newStore(t, Options{})
	keys := []string{"/a", "/a/x", "/a/x/y", "/ab", "/ab/x", "/a0/x", "/a-/x", "/b/a/x", "/aa"}
	for _, k := range keys {
		mustCreate(t, s, k, k)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"/a", []string{"/a/x", "/a/x/y"}},
		{"/a/", []string{"/a/x", "/a/x/y"}},
		{"/a/x", []string{"/a/x/y"}},
		{"/ab", []string{"/ab/x"}},
		{"/b", []string{"/b/a/x"}},
		{"/c", nil},
		{"/", []string{"/a", "/a-/x", "/a/x", "/a/x/y", "/a0/x", "/aa", "/ab", "/ab/x", "/b/a/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			res, err := s.List(t.Context(), tc.prefix, spec.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range res.Items {
				got = append(got, kv.Key)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}

			// A watch on the same prefix sees exactly the same keys change.
			w := mustWatch(t, s, tc.prefix, 0)
			for _, k := range keys {
				mustUpdate(t, s, k, "changed")
			}
			evs := receive(t, w, len(tc.want))
			got = got[:0]
			for _, ev := range evs {
				got = append(got, ev.KV.Key)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Watch(%q) saw %q, want %q", tc.prefix, got, tc.want)
			}
			checkQuiet(t, w)
		})
	}
}

func TestOwnership(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})
	w := mustWatch(t, s, "/", 0)

	in := []byte("abc")
	if _, err := s.Create(ctx, "/o/1", in, spec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X' // the caller's slice is not retained
	mustCreate(t, s, "/o/2", "def")

	kv, _ := s.Get(ctx, "/o/1")
	kv.Value[1] = 'Y' // a returned slice belongs to the caller
	if kv, _ := s.Get(ctx, "/o/1"); string(kv.Value) != "abc" {
		t.Fatalf("stored value changed to %q", kv.Value)
	}

	res, _ := s.List(ctx, "/o", spec.ListOptions{})
	_ = append(res.Items[0].Value, "ZZZ"...) // must not run into the next item
	res.Items[0].Value[0] = 'Q'
	if string(res.Items[1].Value) != "def" {
		t.Fatalf("appending to one listed value changed another: %q", res.Items[1].Value)
	}
	if res, _ := s.List(ctx, "/o", spec.ListOptions{}); string(res.Items[0].Value) != "abc" {
		t.Fatalf("stored value changed through List to %q", res.Items[0].Value)
	}

	evs := receive(t, w, 2)
	evs[0].KV.Value[0] = 'E'
	mustUpdate(t, s, "/o/1", "ghi")
	evs = receive(t, w, 1)
	if string(evs[0].PrevKV.Value) != "abc" {
		t.Fatalf("PrevKV %q, want %q", evs[0].PrevKV.Value, "abc")
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	long := "/" + strings.Repeat("k", spec.MaxKeySize)
	big := make([]byte, spec.MaxValueSize+1)
	tests := []struct {
		name string
		op   func(*Store) error
	}{
		{"get empty key", func(s *Store) error { _, err := s.Get(ctx, ""); return err }},
		{"get relative key", func(s *Store) error { _, err := s.Get(ctx, "k"); return err }},
		{"get key too long", func(s *Store) error { _, err := s.Get(ctx, long); return err }},
		{"create empty key", func(s *Store) error { _, err := s.Create(ctx, "", []byte("v"), spec.CreateOptions{}); return err }},
		{"create relative key", func(s *Store) error { _, err := s.Create(ctx, "a/b", []byte("v"), spec.CreateOptions{}); return err }},
		{"create NUL key", func(s *Store) error {
			_, err := s.Create(ctx, "/a\x00b", []byte("v"), spec.CreateOptions{})
			return err
		}},
		{"create invalid UTF-8 key", func(s *Store) error {
			_, err := s.Create(ctx, "/a\xffb", []byte("v"), spec.CreateOptions{})
			return err
		}},
		{"create key too long", func(s *Store) error { _, err := s.Create(ctx, long, []byte("v"), spec.CreateOptions{}); return err }},
		{"create nil value", func(s *Store) error { _, err := s.Create(ctx, "/k", nil, spec.CreateOptions{}); return err }},
		{"create value too big", func(s *Store) error { _, err := s.Create(ctx, "/k", big, spec.CreateOptions{}); return err }},
		{"create negative TTL", func(s *Store) error {
			_, err := s.Create(ctx, "/k", []byte("v"), spec.CreateOptions{TTL: -time.Second})
			return err
		}},
		{"update nil value", func(s *Store) error { _, err := s.Update(ctx, "/present", nil, 0); return err }},
		{"update value too big", func(s *Store) error { _, err := s.Update(ctx, "/present", big, 0); return err }},
		{"update negative revision", func(s *Store) error { _, err := s.Update(ctx, "/present", []byte("v"), -1); return err }},
		{"update bad key", func(s *Store) error { _, err := s.Update(ctx, "present", []byte("v"), 0); return err }},
		{"delete negative revision", func(s *Store) error { _, _, err := s.Delete(ctx, "/present", -2); return err }},
		{"delete bad key", func(s *Store) error { _, _, err := s.Delete(ctx, "", 0); return err }},
		{"list empty prefix", func(s *Store) error { _, err := s.List(ctx, "", spec.ListOptions{}); return err }},
		{"list relative prefix", func(s *Store) error { _, err := s.List(ctx, "p", spec.ListOptions{}); return err }},
		{"list negative revision", func(s *Store) error { _, err := s.List(ctx, "/", spec.ListOptions{Revision: -1}); return err }},
		{"list negative limit", func(s *Store) error { _, err := s.List(ctx, "/", spec.ListOptions{Limit: -1}); return err }},
		{"watch bad prefix", func(s *Store) error { _, err := s.Watch(ctx, "x", 0); return err }},
		{"watch negative revision", func(s *Store) error { _, err := s.Watch(ctx, "/", -1); return err }},
		{"compact negative revision", func(s *Store) error { return s.Compact(ctx, -1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			mustCreate(t, s, "/present", "v")
			before := mustRevision(t, s)
			wantErr(t, tc.name, tc.op(s), spec.ErrInvalid)
			if after := mustRevision(t, s); after != before {
				t.Fatalf("invalid request moved the revision from %d to %d", before, after)
			}
			if kv, err := s.Get(ctx, "/present"); err != nil || string(kv.Value) != "v" {
				t.Fatalf("invalid request changed /present: %+v %v", kv, err)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		op   func(*Store) error
	}{
		{"get", func(s *Store) error { _, err := s.Get(ctx, "/present"); return err }},
		{"list", func(s *Store) error { _, err := s.List(ctx, "/", spec.ListOptions{}); return err }},
		{"create", func(s *Store) error { _, err := s.Create(ctx, "/k", []byte("v"), spec.CreateOptions{}); return err }},
		{"update", func(s *Store) error { _, err := s.Update(ctx, "/present", []byte("v2"), 0); return err }},
		{"delete", func(s *Store) error { _, _, err := s.Delete(ctx, "/present", 0); return err }},
		{"watch", func(s *Store) error { _, err := s.Watch(ctx, "/", 0); return err }},
		{"compact", func(s *Store) error { return s.Compact(ctx, 2) }},
		{"revision", func(s *Store) error { _, err := s.Revision(ctx); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			mustCreate(t, s, "/present", "v")
			before := mustRevision(t, s)
			wantErr(t, tc.name, tc.op(s), context.Canceled)
			if after := mustRevision(t, s); after != before {
				t.Fatalf("cancelled request moved the revision from %d to %d", before, after)
			}
		})
	}
}

func TestCompact(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{HistoryRevisions: -1})
	mustCreate(t, s, "/c/a", "a1")
	r2 := mustCreate(t, s, "/c/b", "b1")
	r3 := mustUpdate(t, s, "/c/a", "a2")
	r4 := mustDelete(t, s, "/c/b")
	r5 := mustCreate(t, s, "/c/c", "c1")

	steps := []struct {
		name    string
		rev     int64
		wantErr error
	}{
		{"zero is the initial compacted revision", 0, spec.ErrCompacted},
		{"future revision", r5 + 1, spec.ErrFutureRevision},
		{"to r3", r3, nil},
		{"to r3 again", r3, spec.ErrCompacted},
		{"backwards", r2, spec.ErrCompacted},
		{"to r4", r4, nil},
		{"to the current revision", r5, nil},
	}
	for _, st := range steps {
		if st.rev == r4 { // check reads around the first compaction before going on
			checkCompactedReads(t, s, r3, r5)
		}
		wantErr(t, st.name, s.Compact(ctx, st.rev), st.wantErr)
	}
	checkCompactedReads(t, s, r5, r5)

	// The current state survives any compaction.
	res, err := s.List(ctx, "/c", spec.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kvStrings(res.Items), []string{"/c/a=a2@" + fmt.Sprint(r3), "/c/c=c1@" + fmt.Sprint(r5)}; !slices.Equal(got, want) {
		t.Fatalf("current state after compaction %q, want %q", got, want)
	}
	if len(s.keys) != 2 || s.index.Len() != 2 {
		t.Fatalf("deleted key kept after compaction past its delete: %d keys, %d indexed", len(s.keys), s.index.Len())
	}
}

// checkCompactedReads checks List and Watch around compacted revision c
// of a store at revision cur.
func checkCompactedReads(t *testing.T, s *Store, c, cur int64) {
	t.Helper()
	ctx := t.Context()
	if c > 1 {
		_, err := s.List(ctx, "/c", spec.ListOptions{Revision: c - 1})
		wantErr(t, fmt.Sprintf("List at %d below compacted %d", c-1, c), err, spec.ErrCompacted)
	}
	if _, err := s.List(ctx, "/c", spec.ListOptions{Revision: c}); err != nil {
		t.Fatalf("List at compacted revision %d: %v", c, err)
	}
	if c > 2 {
		_, err := s.Watch(ctx, "/c", c-2)
		wantErr(t, fmt.Sprintf("Watch after %d, compacted %d", c-2, c), err, spec.ErrCompacted)
	}
	// A watch from just before the compacted revision replays it and on.
	w := mustWatch(t, s, "/c", c-1)
	evs := receive(t, w, int(cur-c+1))
	if evs[0].Revision() != c || evs[len(evs)-1].Revision() != cur {
		t.Fatalf("watch after %d replayed revisions %d..%d, want %d..%d", c-1, evs[0].Revision(), evs[len(evs)-1].Revision(), c, cur)
	}
	w.Stop()
}

func TestAutoRetention(t *testing.T) {
	const history = 16
	s := newStore(t, Options{HistoryRevisions: history})
	keys := []string{"/r/a", "/r/b", "/r/c", "/r/d", "/r/e"}
	for _, k := range keys {
		mustCreate(t, s, k, "0")
	}
	for i := range 5000 {
		mustUpdate(t, s, keys[i%len(keys)], fmt.Sprint(i))
		// Churn: keys that come and go must not accumulate either.
		tmp := fmt.Sprintf("/r/tmp/%d", i)
		mustCreate(t, s, tmp, "t")
		mustDelete(t, s, tmp)
	}
	cur := mustRevision(t, s)

	s.mu.RLock()
	logLen, logCap, nKeys, nIndex, compactRev := s.log.Len(), cap(s.log.entries), len(s.keys), s.index.Len(), s.compactRev
	versions, maxCap := 0, 0
	for _, kh := range s.keys {
		versions += len(kh.versions)
		maxCap = max(maxCap, cap(kh.versions))
	}
	s.mu.RUnlock()

	if compactRev != cur-history+1 {
		t.Errorf("compacted revision %d, want %d", compactRev, cur-history+1)
	}
	if logLen > history {
		t.Errorf("event log holds %d entries, want at most %d", logLen, history)
	}
	if logCap > 8*history {
		t.Errorf("event log capacity %d grew beyond %d", logCap, 8*history)
	}
	if nKeys > len(keys)+history || nIndex != nKeys {
		t.Errorf("%d keys (%d indexed), want at most %d", nKeys, nIndex, len(keys)+history)
	}
	if versions > nKeys+history {
		t.Errorf("%d versions retained, want at most %d", versions, nKeys+history)
	}
	if maxCap > 8*history {
		t.Errorf("a key's version slice has capacity %d, want at most %d", maxCap, 8*history)
	}

	ctx := t.Context()
	if _, err := s.List(ctx, "/r", spec.ListOptions{Revision: cur - history + 1}); err != nil {
		t.Errorf("List at the oldest retained revision: %v", err)
	}
	_, err := s.List(ctx, "/r", spec.ListOptions{Revision: cur - history})
	wantErr(t, "List before the retained history", err, spec.ErrCompacted)
	_, err = s.Watch(ctx, "/r", cur-history-1)
	wantErr(t, "Watch before the retained history", err, spec.ErrCompacted)
	w := mustWatch(t, s, "/r", cur-history)
	if evs := receive(t, w, history); evs[0].Revision() != cur-history+1 {
		t.Errorf("watch replay starts at %d, want %d", evs[0].Revision(), cur-history+1)
	}
}

func TestUnlimitedHistory(t *testing.T) {
	s := newStore(t, Options{HistoryRevisions: -1})
	first := mustCreate(t, s, "/u/k", "0")
	for i := range 100 {
		mustUpdate(t, s, "/u/k", fmt.Sprint(i+1))
	}
	res, err := s.List(t.Context(), "/u", spec.ListOptions{Revision: first})
	if err != nil || len(res.Items) != 1 || string(res.Items[0].Value) != "0" {
		t.Fatalf("List at the first revision with unlimited history: %v %v", kvStrings(res.Items), err)
	}
}

func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	s := New(Options{})
	mustCreate(t, s, "/k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	tests := []struct {
		name string
		op   func() error
	}{
		{"get", func() error { _, err := s.Get(ctx, "/k"); return err }},
		{"list", func() error { _, err := s.List(ctx, "/", spec.ListOptions{}); return err }},
		{"create", func() error { _, err := s.Create(ctx, "/k2", []byte("v"), spec.CreateOptions{}); return err }},
		{"update", func() error { _, err := s.Update(ctx, "/k", []byte("v"), 0); return err }},
		{"delete", func() error { _, _, err := s.Delete(ctx, "/k", 0); return err }},
		{"watch", func() error { _, err := s.Watch(ctx, "/", 0); return err }},
		{"compact", func() error { return s.Compact(ctx, 2) }},
		{"revision", func() error { _, err := s.Revision(ctx); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.op(), spec.ErrClosed) })
	}
}

func equalKV(a, b spec.KeyValue) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
}

func kvStrings(items []spec.KeyValue) []string {
	var out []string
	for _, kv := range items {
		out = append(out, fmt.Sprintf("%s=%s@%d", kv.Key, kv.Value, kv.ModRevision))
	}
	return out
}
