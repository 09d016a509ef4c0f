// Package storebench is a benchmark suite for any spec.Store, so that store
// plugins can be compared side by side on the same operations (see
// bench_test.go, which runs it for the memory store, the etcd plugin, and the
// same operations written directly against clientv3).
//
// Every operation is issued by one goroutine, one at a time: the figures are
// latencies (ns/op), not throughput under concurrency.
package storebench

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubelab/kubelab/spec"
)

// ValueSize is the size of every value written, in bytes: about a small
// Kubernetes object (a ConfigMap, a small Pod) encoded.
const ValueSize = 1 << 10

// ListKeys is how many keys the List10k benchmark lists at once.
const ListKeys = 10_000

// Value is the value every benchmark writes (ValueSize bytes). Callers must
// not modify it.
var Value = bytes.Repeat([]byte{'v'}, ValueSize)

// runs numbers the prefixes handed out by Prefix.
var runs atomic.Int64

// Prefix returns a directory prefix no earlier call returned in this
// process, under "/bench/<name>/", so that repeated runs (-count) on a store
// that outlives them never collide.
func Prefix(name string) string {
	return fmt.Sprintf("/bench/%s/%d-%d/", name, time.Now().UnixNano(), runs.Add(1))
}

// ListKey is the i-th key List10k creates under prefix; keys sort in the
// order of i.
func ListKey(prefix string, i int) string { return fmt.Sprintf("%s%06d", prefix, i) }

// Run runs the sub-benchmarks Create, UpdateCAS, Get, List10k and
// WatchLatency on stores returned by open. open is called once per
// sub-benchmark; it may return a fresh store (and close it with b.Cleanup)
// or the same long-lived one every time: Run writes only under a Prefix of
// its own and never closes the store.
//
//   - Create: Create of a new key.
//   - UpdateCAS: Update of one key with the mod revision of its last write.
//   - Get: Get of one key.
//   - List10k: List of a directory of ListKeys keys (set up untimed).
//   - WatchLatency: a CAS Update of a watched key and the wait until the
//     watch delivers its event, i.e. a write's latency as seen by watchers.
func Run(b *testing.B, open func(b *testing.B) spec.Store) {
	b.Run("Create", func(b *testing.B) {
		s, ctx, prefix := open(b), b.Context(), Prefix("create")
		i := 0
		for b.Loop() {
			if _, err := s.Create(ctx, fmt.Sprintf("%s%09d", prefix, i), Value, spec.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})

	b.Run("UpdateCAS", func(b *testing.B) {
		s, ctx, prefix := open(b), b.Context(), Prefix("update")
		key := prefix + "k"
		rev := create(b, s, key)
		for b.Loop() {
			var err error
			if rev, err = s.Update(ctx, key, Value, rev); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("Get", func(b *testing.B) {
		s, ctx, prefix := open(b), b.Context(), Prefix("get")
		key := prefix + "k"
		create(b, s, key)
		for b.Loop() {
			if _, err := s.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("List10k", func(b *testing.B) {
		s, ctx, prefix := open(b), b.Context(), Prefix("list")
		for i := range ListKeys {
			create(b, s, ListKey(prefix, i))
		}
		for b.Loop() {
			res, err := s.List(ctx, prefix, spec.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Items) != ListKeys {
				b.Fatalf("listed %d keys, want %d", len(res.Items), ListKeys)
			}
		}
	})

	b.Run("WatchLatency", func(b *testing.B) {
		s, ctx, prefix := open(b), b.Context(), Prefix("watch")
		key := prefix + "k"
		rev := create(b, s, key)
		w, err := s.Watch(ctx, prefix, rev)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Stop()
		for b.Loop() {
			if rev, err = s.Update(ctx, key, Value, rev); err != nil {
				b.Fatal(err)
			}
			awaitRevision(b, w, rev)
		}
	})
}

// create creates key with Value and returns its revision.
func create(b *testing.B, s spec.Store, key string) int64 {
	rev, err := s.Create(b.Context(), key, Value, spec.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return rev
}

// awaitRevision receives batches until one reaches rev.
func awaitRevision(b *testing.B, w spec.Watcher, rev int64) {
	for {
		batch, ok := <-w.Events()
		if !ok {
			b.Fatal("watch closed")
		}
		last := batch[len(batch)-1]
		if last.Type == spec.EventError {
			b.Fatal(last.Err)
		}
		if last.Revision() >= rev {
			return
		}
	}
}
