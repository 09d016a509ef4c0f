package controllers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/controllers"
	"github.com/kubelab/kubelab/reference/controllers/rootcacert"
)

const testCA = "-----BEGIN CERTIFICATE-----\nkubelab-test\n-----END CERTIFICATE-----\n"

// startManager runs a controller manager against cs until the test ends
// (or stop is called) and waits until it leads.
func startManager(t *testing.T, cs kubernetes.Interface, mutate func(*controllers.Config)) (m *controllers.Manager, stop func()) {
	t.Helper()
	cfg := controllers.Config{Client: cs, RootCA: []byte(testCA), ListenAddress: "127.0.0.1:0",
		Logger:         discardLogger(),
		LeaderElection: controllers.LeaderElection{Enabled: true, LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := controllers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case <-m.Leading():
	case err := <-done:
		t.Fatalf("manager ended before leading: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("manager did not lead within 30s")
	}
	return m, stop
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// eventually polls cond every 50ms for up to 30s.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestManagerNamespaceDefaults(t *testing.T) {
	api := apiservertest.Start(t, nil)
	cs := api.Client
	m, _ := startManager(t, cs, nil)
	ctx := context.Background()

	lease, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("leader Lease: %v %+v", err, lease)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	eventually(t, "kube-root-ca.crt", func(ctx context.Context) (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps("team").Get(ctx, rootcacert.ConfigMapName, metav1.GetOptions{})
		return err == nil && cm.Data[rootcacert.DataKey] == testCA, nil
	})
	// Deleted or edited, they come back.
	if err := cs.CoreV1().ServiceAccounts("team").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("team").Get(ctx, rootcacert.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[rootcacert.DataKey] = "tampered"
	if _, err := cs.CoreV1().ConfigMaps("team").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default ServiceAccount recreated", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	eventually(t, "kube-root-ca.crt restored", func(ctx context.Context) (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps("team").Get(ctx, rootcacert.ConfigMapName, metav1.GetOptions{})
		return err == nil && cm.Data[rootcacert.DataKey] == testCA, nil
	})

	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `workqueue_adds_total{name="serviceaccount"}`} {
		resp, err := http.Get("http://" + m.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Fatalf("%s does not contain %q:\n%.2000s", path, want, body)
		}
	}
}
