package apiserverbench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiserverbench"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// TestRunTiny runs the whole workload at a tiny size against kubelab's
// secure API server and checks that the result accounts for every request:
// every pod created and listed, every watcher got every event.
func TestRunTiny(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	cfg := apiserverbench.Config{Pods: 37, Clients: 4, Watchers: 9, WatchEvents: 3, Lists: 2, PageSize: 10}
	var progress bytes.Buffer
	cfg.Progress = &progress
	r, err := apiserverbench.Run(context.Background(), apiserverbench.Target{Name: "kubelab", Store: "memory", Config: s.Config}, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Create.Pods != 37 || r.Create.Clients != 4 || r.Create.Latency.N != 37 || r.Create.PerSecond <= 0 {
		t.Errorf("create: %+v", r.Create)
	}
	if r.List.Items != 37 || r.List.Pages != 1 || r.List.Latency.N != 2 || r.List.PageLatency != nil {
		t.Errorf("unpaged list: %+v", r.List)
	}
	if r.ListPaged.Items != 37 || r.ListPaged.Pages != 4 || r.ListPaged.Latency.N != 2 || r.ListPaged.PageLatency == nil || r.ListPaged.PageLatency.N != 8 {
		t.Errorf("paged list: %+v", r.ListPaged)
	}
	if r.Watch.Watchers != 9 || r.Watch.Events != 3 || r.Watch.Delivered != 27 || r.Watch.Latency.N != 27 || r.Watch.Early > 27 {
		t.Errorf("watch: %+v", r.Watch)
	}
	if r.Watch.FromRequest.N != 27 {
		t.Errorf("watch from request: %+v", r.Watch.FromRequest)
	}
	for _, l := range []apiserverbench.Latency{r.Create.Latency, r.List.Latency, r.ListPaged.Latency, r.Watch.Latency, r.Watch.FromRequest} {
		if l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
			t.Errorf("percentiles out of order: %+v", l)
		}
	}
	if r.ServerVersion == "" || r.Machine.CPUs < 1 || r.Config.QPS != apiserverbench.DefaultQPS || r.Config.Namespace == "" {
		t.Errorf("result metadata: version %q machine %+v config %+v", r.ServerVersion, r.Machine, r.Config)
	}
	// The pods are really there: 37 created plus the 4 watch writes.
	l, err := s.Client.CoreV1().Pods(r.Config.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(l.Items) != 37+4 {
		t.Fatalf("pods in %s: %d, %v", r.Config.Namespace, len(l.Items), err)
	}
	if !strings.Contains(progress.String(), "created 37 pods") {
		t.Errorf("progress: %q", progress.String())
	}

	var table bytes.Buffer
	if err := apiserverbench.WriteTable(&table, []*apiserverbench.Result{r, r}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[0], "kubelab") || !strings.Contains(table.String(), "LIST 37 pods") {
		t.Errorf("table:\n%s", table.String())
	}
	for _, line := range lines {
		if len(line) != len(lines[0]) || strings.Count(line, "|") != 4 {
			t.Errorf("table row not aligned: %q", line)
		}
	}
}

// TestRunCleanup checks that Cleanup removes what the bench created.
func TestRunCleanup(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	cfg := apiserverbench.Config{Pods: 5, Clients: 2, Watchers: 2, WatchEvents: 1, Lists: 1, Namespace: "bench-x", Cleanup: true}
	if _, err := apiserverbench.Run(context.Background(), apiserverbench.Target{Name: "kubelab", Config: s.Config}, cfg); err != nil {
		t.Fatal(err)
	}
	l, err := s.Client.CoreV1().Pods("bench-x").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("pods left: %d, %v", len(l.Items), err)
	}
}

// TestRunRejectsBadConfig checks the validation of sizes.
func TestRunRejectsBadConfig(t *testing.T) {
	_, err := apiserverbench.Run(context.Background(), apiserverbench.Target{Name: "x"}, apiserverbench.Config{Pods: -1, PageSize: -5})
	if err == nil || !strings.Contains(err.Error(), "pods must be at least 1") || !strings.Contains(err.Error(), "page size") {
		t.Fatalf("err = %v", err)
	}
	if _, err := apiserverbench.Run(context.Background(), apiserverbench.Target{Name: "x"}, apiserverbench.Config{}); err == nil {
		t.Fatal("Run without a client config succeeded")
	}
}

// TestCreatePodsReportsFailure checks that a refused create fails the phase
// with the server's error.
func TestCreatePodsReportsFailure(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	clients, err := apiserverbench.NewClients(s.Config, 2, 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	// No such namespace: every create is refused.
	_, err = apiserverbench.CreatePods(context.Background(), clients, "missing", "p", 10)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v", err)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := apiserverbench.Summarize(ds)
	if l.N != 100 || l.P50 != 50*time.Millisecond || l.P90 != 90*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Fatalf("%+v", l)
	}
	if one := apiserverbench.Summarize([]time.Duration{7}); one.P50 != 7 || one.P99 != 7 {
		t.Fatalf("%+v", one)
	}
	if (apiserverbench.Summarize(nil) != apiserverbench.Latency{}) {
		t.Fatal("empty")
	}
}
