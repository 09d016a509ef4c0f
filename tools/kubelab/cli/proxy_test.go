package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/freeport"
)

// statesProxy is a registered proxy plugin that keeps the last state.
type statesProxy struct {
	mu   sync.Mutex
	last spec.ProxyState
}

func (p *statesProxy) Sync(_ context.Context, st spec.ProxyState) error {
	p.mu.Lock()
	p.last = st
	p.mu.Unlock()
	return nil
}

func (p *statesProxy) Cleanup(context.Context) error { return nil }

func (p *statesProxy) endpoints() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, sp := range p.last.Services {
		n += len(sp.Endpoints)
	}
	return n
}

// TestProxyCommandAgainstAPIServer runs `kubelab proxy` with the proxy
// kubeconfig (system:kube-proxy, bootstrap RBAC) against kubelab's API
// server, with a recording plugin.
func TestProxyCommandAgainstAPIServer(t *testing.T) {
	dataDir := t.TempDir()
	_, stop := startAPIServer(t, APIServerOptions{DataDir: dataDir})
	defer stop()
	admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, pki.AdminKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(admin)
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	name, p8080 := "http", int32(8080)
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &p8080}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.2"}}}}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := &statesProxy{}
	reg := spec.NewRegistry()
	if err := reg.RegisterProxy(spec.ProxyPlugin{Name: "rec", New: func(context.Context, spec.ProxyConfig) (spec.Proxy, error) { return rec, nil }}); err != nil {
		t.Fatal(err)
	}
	healthz, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() {
		done <- RunProxy(pctx, reg, ProxyOptions{Kubeconfig: filepath.Join(dataDir, pki.ProxyKubeconfigFile), NodeName: "node-1",
			Proxy: "rec", NodeIPs: []string{"192.168.0.1"}, MinSyncPeriod: 50 * time.Millisecond, SyncPeriod: time.Minute,
			HealthzAddress: healthz}, out)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunProxy: %v\n%s", err, out.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for rec.endpoints() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin never got the service's endpoint\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec.mu.Lock()
	st := rec.last
	rec.mu.Unlock()
	i := slices.IndexFunc(st.Services, func(sp spec.ServicePort) bool { return sp.Name == "web" })
	if i < 0 || !st.Services[i].ClusterIPs[0].IsValid() || st.Services[i].Endpoints[0].Port != 8080 || st.NodeAddresses[0].String() != "192.168.0.1" {
		t.Errorf("state = %+v", st)
	}
	resp, err := http.Get("http://" + healthz + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + healthz + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "kubeproxy_sync_proxy_rules_duration_seconds") {
		t.Errorf("/metrics lacks the sync duration histogram")
	}
}

func TestProxyOptionsErrors(t *testing.T) {
	reg := spec.NewRegistry()
	if err := RunProxy(context.Background(), reg, ProxyOptions{NodeName: "n", Proxy: "nope"}, io.Discard); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("unknown plugin: %v", err)
	}
	if err := RunProxy(context.Background(), reg, ProxyOptions{Proxy: "nope"}, io.Discard); err == nil {
		t.Errorf("no node name accepted")
	}
}
