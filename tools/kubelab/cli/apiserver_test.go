package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/plugins/builtin"
)

func TestRunAPIServerWritesKubeconfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- RunAPIServer(ctx, builtin.Registry(), APIServerOptions{
			Store: "memory", Listen: "127.0.0.1:0", Kubeconfig: kcfg, DataDir: t.TempDir(),
		}, &out, func(url string) { ready <- url })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("RunAPIServer: %v\n%s", err, out.String())
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kcfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(ns.Items) != 4 {
		t.Fatalf("namespaces: %v %v", ns, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunAPIServer after cancel: %v", err)
	}
}
