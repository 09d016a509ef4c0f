package apiserverbench_test

import (
	"context"
	"testing"

	"github.com/kubelab/kubelab/reference/apiserver/apiserverbench"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// BenchmarkWatchFanout times one pod create delivered to 1 000 concurrent
// watchers (over 16 client connections) of kubelab's secure API server on
// the memory store: ns/op is per write, with the delivery latency's p50 and
// p99 (from the write's response to each watcher's receipt) as extra
// metrics. Pod creates from 16 clients and the LIST of 10 000 pods are
// reference/apiserver's BenchmarkPodCreate and BenchmarkListPods; `kubelab
// bench apiserver` runs all three on every store.
func BenchmarkWatchFanout(b *testing.B) {
	const watchers, clients = 1000, 16
	s := apiservertest.StartSecure(b, nil)
	cs, err := apiserverbench.NewClients(s.Config, clients, apiserverbench.DefaultQPS, apiserverbench.DefaultBurst)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ns := "fanout"
	if err := apiserverbench.EnsureNamespace(ctx, cs[0], ns); err != nil {
		b.Fatal(err)
	}
	f, err := apiserverbench.StartFanout(ctx, cs[0], cs, ns, "w", watchers, apiserverbench.DefaultWatchTimeout)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := f.Write(ctx, cs[0]); err != nil {
			break
		}
	}
	r, err := f.Stop()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(r.Latency.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(r.Latency.P99.Nanoseconds()), "p99-ns")
}
