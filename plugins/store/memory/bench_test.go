package memory

import (
	"context"
	"fmt"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

var benchValue = make([]byte, 256) // a small Kubernetes object's size

func BenchmarkCreate(b *testing.B) {
	s := newStore(b, Options{})
	ctx := context.Background()
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = fmt.Sprintf("/registry/pods/default/pod-%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Create(ctx, keys[i], benchValue, spec.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateCAS is the API server's hot path: a compare-and-swap
// update of an existing object, here round-robin over 1000 keys.
func BenchmarkUpdateCAS(b *testing.B) {
	s := newStore(b, Options{})
	ctx := context.Background()
	const n = 1000
	keys := make([]string, n)
	revs := make([]int64, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/registry/pods/default/pod-%d", i)
		revs[i] = mustCreate(b, s, keys[i], "v")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % n
		rev, err := s.Update(ctx, keys[j], benchValue, revs[j])
		if err != nil {
			b.Fatal(err)
		}
		revs[j] = rev
	}
}

// BenchmarkUpdateCASParallel runs CAS updates from GOMAXPROCS goroutines,
// each on its own keys.
func BenchmarkUpdateCASParallel(b *testing.B) {
	s := newStore(b, Options{})
	ctx := context.Background()
	var next int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var id int64
		s.mu.Lock()
		next++
		id = next
		s.mu.Unlock()
		key := fmt.Sprintf("/registry/pods/p%d", id)
		rev, err := s.Create(ctx, key, benchValue, spec.CreateOptions{})
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if rev, err = s.Update(ctx, key, benchValue, rev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	s := newStore(b, Options{})
	ctx := context.Background()
	const n = 10000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/registry/pods/default/pod-%d", i)
		if _, err := s.Create(ctx, keys[i], benchValue, spec.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(ctx, keys[(i*7919)%n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList10k lists a prefix of 10k keys (among 20k) in one call.
func BenchmarkList10k(b *testing.B) {
	s := newStore(b, Options{})
	ctx := context.Background()
	for i := range 10000 {
		for _, ns := range []string{"default", "kube-system"} {
			key := fmt.Sprintf("/registry/pods/%s/pod-%05d", ns, i)
			if _, err := s.Create(ctx, key, benchValue, spec.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := s.List(ctx, "/registry/pods/default", spec.ListOptions{})
		if err != nil || len(res.Items) != 10000 {
			b.Fatalf("%d items, %v", len(res.Items), err)
		}
	}
}

// BenchmarkWatchLatency measures one update plus its delivery to a watcher:
// the time from Update's call to the event's arrival.
func BenchmarkWatchLatency(b *testing.B) {
	s := newStore(b, Options{})
	ctx := context.Background()
	mustCreate(b, s, "/registry/pods/default/web", "v")
	w := mustWatch(b, s, "/registry/pods", 0)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rev, err := s.Update(ctx, "/registry/pods/default/web", benchValue, 0)
		if err != nil {
			b.Fatal(err)
		}
		batch := <-w.Events()
		if len(batch) != 1 || batch[0].Revision() != rev {
			b.Fatalf("batch %+v, want the event of revision %d", batch, rev)
		}
	}
}
