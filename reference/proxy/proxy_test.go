package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubelab/kubelab/spec"
)

// recordingProxy is a spec.Proxy that records each Sync and can fail.
type recordingProxy struct {
	mu    sync.Mutex
	syncs []time.Time
	last  spec.ProxyState
	fail  error
}

func (p *recordingProxy) Sync(_ context.Context, st spec.ProxyState) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.syncs = append(p.syncs, time.Now())
	if p.fail != nil {
		return p.fail
	}
	p.last = st
	return nil
}

func (p *recordingProxy) Cleanup(context.Context) error { return nil }

func (p *recordingProxy) snapshot() (spec.ProxyState, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, append([]time.Time(nil), p.syncs...)
}

func (p *recordingProxy) setFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func endpointCount(st spec.ProxyState) int {
	n := 0
	for _, sp := range st.Services {
		n += len(sp.Endpoints)
	}
	return n
}

func TestRunnerSyncsBatchedAndRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "192.168.1.5"}, {Type: corev1.NodeHostName, Address: "a"}}}}
	client := fake.NewClientset(node, svc("web"))
	rp := &recordingProxy{}
	const minSync = 200 * time.Millisecond
	r, err := New(Config{Client: client, NodeName: "a", Proxy: rp, MinSyncPeriod: minSync, SyncPeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	if code, _ := get(t, srv.URL+"/healthz"); code != 503 {
		t.Errorf("healthz before the first sync = %d, want 503", code)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	eventually(t, "the first sync with the service", func() bool { st, _ := rp.snapshot(); return len(st.Services) == 1 })
	st, _ := rp.snapshot()
	if st.NodeName != "a" || len(st.NodeAddresses) != 1 || st.NodeAddresses[0] != netip.MustParseAddr("192.168.1.5") {
		t.Errorf("node in state = %q %v, want a [192.168.1.5] from the Node object", st.NodeName, st.NodeAddresses)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("healthz after a sync = %d, want 200", code)
	}

	// A burst of changes is synced in few, spaced syncs.
	es := slice("web-1", "web", []discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolTCP)})
	es, err = client.DiscoveryV1().EndpointSlices("ns").Create(ctx, es, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		es.Endpoints = append(es.Endpoints, ep(netip.AddrFrom4([4]byte{10, 244, 0, byte(i + 1)}).String(), ""))
		if es, err = client.DiscoveryV1().EndpointSlices("ns").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all 20 endpoints synced", func() bool { st, _ := rp.snapshot(); return endpointCount(st) == 20 })
	_, syncs := rp.snapshot()
	for i := 1; i < len(syncs); i++ {
		if gap := syncs[i].Sub(syncs[i-1]); gap < minSync {
			t.Errorf("syncs %d and %d only %s apart, want >= %s", i-1, i, gap, minSync)
		}
	}
	if len(syncs) >= 21 {
		t.Errorf("%d syncs for 21 changes: not batched", len(syncs))
	}

	// A failing plugin is retried until it succeeds, and counted.
	rp.setFail(errors.New("injected"))
	es.Endpoints = es.Endpoints[:1]
	if _, err = client.DiscoveryV1().EndpointSlices("ns").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed sync", func() bool { _, _, err := r.LastState(); return err != nil })
	rp.setFail(nil)
	eventually(t, "the retry", func() bool { st, _ := rp.snapshot(); return endpointCount(st) == 1 })
	_, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{"kubeproxy_sync_proxy_rules_duration_seconds_count", "kubeproxy_sync_proxy_rules_failures_total 1",
		"kubeproxy_sync_proxy_rules_endpoint_changes_total", "kubeproxy_sync_proxy_rules_last_timestamp_seconds"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunnerReportsWhatThePluginSkipped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(svc("web"), svc("ok", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"} }))
	rp := &recordingProxy{fail: &spec.PartialSyncError{Skipped: []spec.SkippedServicePort{{Namespace: "ns", Name: "web", PortName: "http", Reason: "protocol \"QUIC\""}}}}
	r, err := New(Config{Client: client, NodeName: "a", NodeAddresses: []netip.Addr{netip.MustParseAddr("192.168.1.5")}, Proxy: rp,
		MinSyncPeriod: 10 * time.Millisecond, SyncPeriod: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var events []corev1.Event
	eventually(t, "a NotProxied event on web", func() bool {
		list, err := client.CoreV1().Events("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		events = list.Items
		return len(events) > 0
	})
	// Several resyncs later (partial syncs count as successful: healthy),
	// still one event.
	eventually(t, "resyncs", func() bool { _, n, _ := r.LastState(); return n >= 4 })
	if ok, why := r.Healthy(time.Now()); !ok {
		t.Errorf("unhealthy after partial syncs: %s", why)
	}
	list, err := client.CoreV1().Events("ns").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Count > 1 {
		t.Errorf("events = %+v, want one, once", list.Items)
	}
	e := list.Items[0]
	if e.Reason != EventReasonNotProxied || e.InvolvedObject.Name != "web" || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "QUIC") {
		t.Errorf("event = %s %s on %s: %q", e.Type, e.Reason, e.InvolvedObject.Name, e.Message)
	}
	cancel()
	<-done
}

func TestHealthyRule(t *testing.T) {
	r, err := New(Config{Client: fake.NewClientset(), NodeName: "a", Proxy: &recordingProxy{}, SyncPeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if ok, _ := r.Healthy(now); ok {
		t.Errorf("healthy before any sync")
	}
	r.syncedAt = now.Add(-time.Hour)
	if ok, why := r.Healthy(now); !ok {
		t.Errorf("unhealthy with nothing queued: %s", why)
	}
	r.queuedAt = now.Add(-3 * time.Minute)
	if ok, _ := r.Healthy(now); ok {
		t.Errorf("healthy with a change waiting 3 sync periods")
	}
	if _, err := New(Config{Client: fake.NewClientset(), NodeName: "a", Proxy: &recordingProxy{}, MinSyncPeriod: time.Hour}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("min sync period over sync period: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
