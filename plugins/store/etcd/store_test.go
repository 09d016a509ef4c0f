package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
)

// The conformance suite (conformance/store) tests the contract in depth; these
// tests cover each operation's mapping onto etcd briefly.

func TestCreateGet(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)

	rev1 := mustCreate(t, s, "/a/one", "1")
	kv, err := s.Get(ctx, "/a/one")
	if err != nil {
		t.Fatal(err)
	}
	want := spec.KeyValue{Key: "/a/one", Value: []byte("1"), CreateRevision: rev1, ModRevision: rev1}
	if kv.Key != want.Key || !bytes.Equal(kv.Value, want.Value) || kv.CreateRevision != rev1 || kv.ModRevision != rev1 {
		t.Errorf("Get = %+v, want %+v", kv, want)
	}
	if _, err := s.Create(ctx, "/a/one", []byte("again"), spec.CreateOptions{}); !errors.Is(err, spec.ErrAlreadyExists) {
		t.Errorf("second Create: %v, want ErrAlreadyExists", err)
	}
	if _, err := s.Get(ctx, "/a/missing"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Get missing: %v, want ErrNotFound", err)
	}
	rev2 := mustCreate(t, s, "/a/empty", "")
	if rev2 <= rev1 {
		t.Errorf("revision %d after %d", rev2, rev1)
	}
	if kv, err := s.Get(ctx, "/a/empty"); err != nil || kv.Value == nil || len(kv.Value) != 0 {
		t.Errorf("empty value: %#v, %v; want a non-nil empty slice", kv.Value, err)
	}
	if rev, err := s.Revision(ctx); err != nil || rev != rev2 {
		t.Errorf("Revision = %d, %v; want %d", rev, err, rev2)
	}

	big := bytes.Repeat([]byte{'x'}, spec.MaxValueSize)
	longKey := "/" + strings.Repeat("k", spec.MaxKeySize-1)
	if _, err := s.Create(ctx, longKey, big, spec.CreateOptions{}); err != nil {
		t.Fatalf("Create of the largest key and value: %v", err)
	}
	if kv, err := s.Get(ctx, longKey); err != nil || !bytes.Equal(kv.Value, big) {
		t.Errorf("Get of the largest value: %d bytes, %v", len(kv.Value), err)
	}
}

func TestUpdateDelete(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	created := mustCreate(t, s, "/k", "v1")

	rev, err := s.Update(ctx, "/k", []byte("v2"), created)
	if err != nil || rev <= created {
		t.Fatalf("CAS Update = %d, %v", rev, err)
	}
	if _, err := s.Update(ctx, "/k", []byte("v3"), created); !errors.Is(err, spec.ErrConflict) {
		t.Errorf("stale CAS Update: %v, want ErrConflict", err)
	}
	rev, err = s.Update(ctx, "/k", []byte("v4"), 0)
	if err != nil {
		t.Fatalf("unconditional Update: %v", err)
	}
	kv, _ := s.Get(ctx, "/k")
	if string(kv.Value) != "v4" || kv.CreateRevision != created || kv.ModRevision != rev {
		t.Errorf("after updates: %+v (created %d, updated %d)", kv, created, rev)
	}
	for _, exp := range []int64{0, 1, rev} {
		if _, err := s.Update(ctx, "/nokey", []byte("x"), exp); !errors.Is(err, spec.ErrNotFound) {
			t.Errorf("Update of a missing key, expected %d: %v, want ErrNotFound", exp, err)
		}
		if _, _, err := s.Delete(ctx, "/nokey", exp); !errors.Is(err, spec.ErrNotFound) {
			t.Errorf("Delete of a missing key, expected %d: %v, want ErrNotFound", exp, err)
		}
	}

	if _, _, err := s.Delete(ctx, "/k", created); !errors.Is(err, spec.ErrConflict) {
		t.Errorf("stale CAS Delete: %v, want ErrConflict", err)
	}
	prev, drev, err := s.Delete(ctx, "/k", rev)
	if err != nil || drev <= rev || string(prev.Value) != "v4" || prev.ModRevision != rev || prev.CreateRevision != created {
		t.Errorf("Delete = %+v, %d, %v", prev, drev, err)
	}
	if _, err := s.Get(ctx, "/k"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	mustCreate(t, s, "/k", "again")
	if prev, _, err := s.Delete(ctx, "/k", 0); err != nil || string(prev.Value) != "again" {
		t.Errorf("unconditional Delete = %+v, %v", prev, err)
	}
}

func TestList(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	for _, k := range []string{"/a", "/a/1", "/a/2", "/a/3/deep", "/a/4", "/ab", "/a0"} {
		mustCreate(t, s, k, k)
	}
	keys := func(items []spec.KeyValue) string {
		var ks []string
		for _, kv := range items {
			ks = append(ks, kv.Key)
		}
		return strings.Join(ks, " ")
	}
	for _, prefix := range []string{"/a", "/a/"} {
		res, err := s.List(ctx, prefix, spec.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := keys(res.Items), "/a/1 /a/2 /a/3/deep /a/4"; got != want || res.More {
			t.Errorf("List(%q) = %q more=%v, want %q", prefix, got, res.More, want)
		}
	}

	// Pages at one revision, while the directory changes.
	page1, err := s.List(ctx, "/a", spec.ListOptions{Limit: 2})
	if err != nil || keys(page1.Items) != "/a/1 /a/2" || !page1.More {
		t.Fatalf("page 1 = %q more=%v, %v", keys(page1.Items), page1.More, err)
	}
	mustCreate(t, s, "/a/25", "new")
	if _, _, err := s.Delete(ctx, "/a/4", 0); err != nil {
		t.Fatal(err)
	}
	page2, err := s.List(ctx, "/a", spec.ListOptions{Revision: page1.Revision, Limit: 2, After: "/a/2"})
	if err != nil || keys(page2.Items) != "/a/3/deep /a/4" || page2.More || page2.Revision != page1.Revision {
		t.Errorf("page 2 = %q more=%v rev=%d, %v; want \"/a/3/deep /a/4\" at %d", keys(page2.Items), page2.More, page2.Revision, err, page1.Revision)
	}
	if res, err := s.List(ctx, "/a", spec.ListOptions{After: "/a/4"}); err != nil || len(res.Items) != 0 || res.Revision == 0 {
		t.Errorf("List after the last key = %+v, %v", res, err)
	}
	if res, err := s.List(ctx, "/a", spec.ListOptions{After: "/b"}); err != nil || len(res.Items) != 0 {
		t.Errorf("List after the directory = %+v, %v", res, err)
	}

	cur, _ := s.Revision(ctx)
	if _, err := s.List(ctx, "/a", spec.ListOptions{Revision: cur + 10}); !errors.Is(err, spec.ErrFutureRevision) {
		t.Errorf("List at a future revision: %v", err)
	}
	if err := s.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, "/a", spec.ListOptions{Revision: page1.Revision}); !errors.Is(err, spec.ErrCompacted) {
		t.Errorf("List at a compacted revision: %v", err)
	}
	if _, err := s.List(ctx, "/a", spec.ListOptions{Revision: page1.Revision, After: "/z"}); !errors.Is(err, spec.ErrCompacted) {
		t.Errorf("empty List at a compacted revision: %v", err)
	}
	if res, err := s.List(ctx, "/a", spec.ListOptions{Revision: cur}); err != nil || res.Revision != cur {
		t.Errorf("List at the compacted revision itself = %+v, %v", res, err)
	}
}

func TestCompact(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	mustCreate(t, s, "/c/1", "1")
	r := mustCreate(t, s, "/c/2", "2")
	if err := s.Compact(ctx, r+1); !errors.Is(err, spec.ErrFutureRevision) {
		t.Errorf("Compact beyond the current revision: %v", err)
	}
	if err := s.Compact(ctx, 0); !errors.Is(err, spec.ErrCompacted) {
		t.Errorf("Compact(0): %v", err)
	}
	if err := s.Compact(ctx, r-1); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []int64{r - 1, r - 2} {
		if err := s.Compact(ctx, rev); !errors.Is(err, spec.ErrCompacted) {
			t.Errorf("Compact(%d) after Compact(%d): %v", rev, r-1, err)
		}
	}
	if err := s.Compact(ctx, r); err != nil {
		t.Errorf("Compact to the current revision: %v", err)
	}
	if kv, err := s.Get(ctx, "/c/1"); err != nil || string(kv.Value) != "1" {
		t.Errorf("current state lost by compaction: %+v, %v", kv, err)
	}
}

func TestInvalidInput(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	ctx := testCtx(t)
	mustCreate(t, s, "/ok", "v")
	before, _ := s.Revision(ctx)
	big := make([]byte, spec.MaxValueSize+1)
	long := "/" + strings.Repeat("k", spec.MaxKeySize)
	calls := map[string]func() error{}
	for name, key := range map[string]string{"empty": "", "relative": "a/b", "NUL": "/a\x00b", "non-UTF-8": "/\xff", "too long": long} {
		calls["Get "+name] = func() error { _, err := s.Get(ctx, key); return err }
		calls["Create "+name] = func() error { _, err := s.Create(ctx, key, []byte("v"), spec.CreateOptions{}); return err }
		calls["Update "+name] = func() error { _, err := s.Update(ctx, key, []byte("v"), 0); return err }
		calls["Delete "+name] = func() error { _, _, err := s.Delete(ctx, key, 0); return err }
		calls["List "+name] = func() error { _, err := s.List(ctx, key, spec.ListOptions{}); return err }
		if key != "" { // an empty After is no continuation at all
			calls["List after "+name] = func() error { _, err := s.List(ctx, "/ok", spec.ListOptions{After: key}); return err }
		}
		calls["Watch "+name] = func() error { _, err := s.Watch(ctx, key, 0); return err }
	}
	calls["Create nil value"] = func() error { _, err := s.Create(ctx, "/n", nil, spec.CreateOptions{}); return err }
	calls["Create big value"] = func() error { _, err := s.Create(ctx, "/n", big, spec.CreateOptions{}); return err }
	calls["Create negative TTL"] = func() error { _, err := s.Create(ctx, "/n", []byte("v"), spec.CreateOptions{TTL: -1}); return err }
	calls["Update nil value"] = func() error { _, err := s.Update(ctx, "/ok", nil, 0); return err }
	calls["Update big value"] = func() error { _, err := s.Update(ctx, "/ok", big, 0); return err }
	calls["Update negative revision"] = func() error { _, err := s.Update(ctx, "/ok", []byte("v"), -1); return err }
	calls["Delete negative revision"] = func() error { _, _, err := s.Delete(ctx, "/ok", -1); return err }
	calls["List negative revision"] = func() error { _, err := s.List(ctx, "/ok", spec.ListOptions{Revision: -1}); return err }
	calls["List negative limit"] = func() error { _, err := s.List(ctx, "/ok", spec.ListOptions{Limit: -1}); return err }
	calls["Watch negative revision"] = func() error { _, err := s.Watch(ctx, "/ok", -1); return err }
	calls["Compact negative revision"] = func() error { return s.Compact(ctx, -1) }
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, spec.ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
	if after, _ := s.Revision(ctx); after != before {
		t.Errorf("invalid calls moved the revision from %d to %d", before, after)
	}
}

func TestCancelledContextAndClosedStore(t *testing.T) {
	s := openEmbedded(t, etcd.Options{})
	mustCreate(t, s, "/x", "v")
	ops := map[string]func(ctx context.Context) error{
		"Get":  func(ctx context.Context) error { _, err := s.Get(ctx, "/x"); return err },
		"List": func(ctx context.Context) error { _, err := s.List(ctx, "/", spec.ListOptions{}); return err },
		"Create": func(ctx context.Context) error {
			_, err := s.Create(ctx, "/y", []byte("v"), spec.CreateOptions{})
			return err
		},
		"Update":   func(ctx context.Context) error { _, err := s.Update(ctx, "/x", []byte("v"), 0); return err },
		"Delete":   func(ctx context.Context) error { _, _, err := s.Delete(ctx, "/x", 0); return err },
		"Watch":    func(ctx context.Context) error { _, err := s.Watch(ctx, "/", 0); return err },
		"Compact":  func(ctx context.Context) error { return s.Compact(ctx, 1) },
		"Revision": func(ctx context.Context) error { _, err := s.Revision(ctx); return err },
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, op := range ops {
		if err := op(cancelled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: %v", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, op := range ops {
		if err := op(context.Background()); !errors.Is(err, spec.ErrClosed) {
			t.Errorf("%s on a closed store: %v", name, err)
		}
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := tmpfsDir(t)
	ctx := testCtx(t)
	s, err := etcd.New(ctx, etcd.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := range 10 {
		last = mustCreate(t, s, fmt.Sprintf("/d/%d", i), "v")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = etcd.New(ctx, etcd.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rev, err := s.Revision(ctx); err != nil || rev != last {
		t.Errorf("revision after reopening = %d, %v; want %d", rev, err, last)
	}
	if res, err := s.List(ctx, "/d", spec.ListOptions{}); err != nil || len(res.Items) != 10 {
		t.Errorf("List after reopening: %d items, %v", len(res.Items), err)
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := tmpfsDir(t)
	openEmbedded(t, etcd.Options{DataDir: dir})
	if s, err := etcd.New(testCtx(t), etcd.Options{DataDir: dir}); !errors.Is(err, etcd.ErrDataDirInUse) {
		if err == nil {
			s.Close()
		}
		t.Errorf("second store on one data dir: %v, want ErrDataDirInUse", err)
	}
}
