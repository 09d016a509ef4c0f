package storebench_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/plugins/store/storebench"
	"github.com/kubelab/kubelab/spec"
)

// BenchmarkStores runs the storebench suite side by side on:
//
//   - memory: the in-memory store;
//   - etcd: the etcd plugin on an embedded etcd server;
//   - clientv3: the same operations written directly with clientv3 (Txn,
//     Get, Watch) through the client of an embedded server the plugin
//     started, so that the difference between etcd and clientv3 is the
//     plugin's own overhead.
//
// Every sub-benchmark gets a fresh store (and so a fresh etcd server of the
// same configuration): sharing one server would bias whichever variant runs
// second with a bigger database and heap.
//
// The embedded servers' data dirs are on tmpfs (/dev/shm) when the machine
// has it, so fsync is nearly free and the etcd figures measure etcd's
// request path rather than the disk; with a real disk every write also pays
// an fsync of etcd's WAL (0.1 to 10 ms depending on the device). The servers
// run with fsync enabled, as in production. Setting STOREBENCH_DIR to a
// directory puts the data dirs there instead (e.g. on a disk).
func BenchmarkStores(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		storebench.Run(b, func(b *testing.B) spec.Store {
			s := memory.New(memory.Options{})
			b.Cleanup(func() { s.Close() })
			return s
		})
	})
	b.Run("etcd", func(b *testing.B) {
		storebench.Run(b, func(b *testing.B) spec.Store { return openEtcd(b) })
	})
	b.Run("clientv3", func(b *testing.B) {
		runClientv3(b, func(b *testing.B) *clientv3.Client { return openEtcd(b).Client() })
	})
}

// openEtcd opens the etcd plugin on a fresh embedded server whose data dir
// is on tmpfs, and closes it at the end of the benchmark.
func openEtcd(b *testing.B) *etcd.Store {
	s, err := etcd.New(b.Context(), etcd.Options{DataDir: tmpfsDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// tmpfsDir returns a new directory under $STOREBENCH_DIR, else on /dev/shm
// (else in the default temporary directory), removed at the end of the
// benchmark.
func tmpfsDir(b *testing.B) string {
	base := os.Getenv("STOREBENCH_DIR")
	if st, err := os.Stat("/dev/shm"); base == "" && err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "kubelab-storebench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runClientv3 mirrors storebench.Run operation by operation with clientv3
// calls: the same keys, values, transactions and watch options as the etcd
// plugin, without its validation, error mapping and conversion to spec types.
func runClientv3(b *testing.B, open func(b *testing.B) *clientv3.Client) {
	value := string(storebench.Value)

	b.Run("Create", func(b *testing.B) {
		cli, ctx, prefix := open(b), b.Context(), storebench.Prefix("create")
		i := 0
		for b.Loop() {
			key := fmt.Sprintf("%s%09d", prefix, i)
			resp, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, value)).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
			i++
		}
	})

	b.Run("UpdateCAS", func(b *testing.B) {
		cli, ctx, prefix := open(b), b.Context(), storebench.Prefix("update")
		key := prefix + "k"
		rev := rawCreate(b, cli, key, value)
		for b.Loop() {
			resp, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, value)).
				Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
			rev = resp.Header.Revision
		}
	})

	b.Run("Get", func(b *testing.B) {
		cli, ctx, prefix := open(b), b.Context(), storebench.Prefix("get")
		key := prefix + "k"
		rawCreate(b, cli, key, value)
		for b.Loop() {
			resp, err := cli.Get(ctx, key)
			if err != nil || len(resp.Kvs) != 1 {
				b.Fatal(err)
			}
		}
	})

	b.Run("List10k", func(b *testing.B) {
		cli, ctx, prefix := open(b), b.Context(), storebench.Prefix("list")
		for i := range storebench.ListKeys {
			rawCreate(b, cli, storebench.ListKey(prefix, i), value)
		}
		end := clientv3.GetPrefixRangeEnd(prefix)
		for b.Loop() {
			resp, err := cli.Get(ctx, prefix, clientv3.WithRange(end))
			if err != nil {
				b.Fatal(err)
			}
			if len(resp.Kvs) != storebench.ListKeys {
				b.Fatalf("listed %d keys, want %d", len(resp.Kvs), storebench.ListKeys)
			}
		}
	})

	b.Run("WatchLatency", func(b *testing.B) {
		cli, ctx, prefix := open(b), b.Context(), storebench.Prefix("watch")
		key := prefix + "k"
		rev := rawCreate(b, cli, key, value)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
		for b.Loop() {
			resp, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, value)).
				Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
			rev = resp.Header.Revision
			for {
				wr, ok := <-wch
				if !ok || wr.Err() != nil {
					b.Fatalf("watch ended: %v", wr.Err())
				}
				if n := len(wr.Events); n > 0 && wr.Events[n-1].Kv.ModRevision >= rev {
					break
				}
			}
		}
	})
}

// rawCreate creates key with clientv3 and returns its revision.
func rawCreate(b *testing.B, cli *clientv3.Client, key, value string) int64 {
	resp, err := cli.Txn(b.Context()).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, value)).
		Commit()
	if err != nil || !resp.Succeeded {
		b.Fatalf("create %q: %v", key, err)
	}
	return resp.Header.Revision
}
