package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// startAPIServer runs RunAPIServer on a random port until the returned stop
// is called; it returns the server's URL.
func startAPIServer(t *testing.T, opts APIServerOptions) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	opts.Store, opts.Listen = "memory", "127.0.0.1:0"
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- RunAPIServer(ctx, builtin.Registry(), opts, &out, func(url string) { ready <- url }) }()
	select {
	case url = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("RunAPIServer: %v\n%s", err, out.String())
	}
	return url, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunAPIServer after cancel: %v", err)
		}
	}
}

func TestAPIServerSecureKubectl(t *testing.T) {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	dir, dataDir := t.TempDir(), t.TempDir()
	kcfg := filepath.Join(dir, "kubeconfig")
	url, stop := startAPIServer(t, APIServerOptions{Kubeconfig: kcfg, DataDir: dataDir})
	defer stop()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %s", url)
	}
	for _, f := range []string{pki.CACertFile, pki.AdminKubeconfigFile, pki.SchedulerKubeconfigFile, pki.ControllerManagerKubeconfigFile, pki.ProxyKubeconfigFile} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Errorf("data dir: %v", err)
		}
	}
	kubectl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--cache-dir", filepath.Join(dir, "cache")}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "KUBECONFIG="+kcfg)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		args []string
		want string
		fail bool
	}{
		{args: []string{"get", "ns"}, want: "kube-system"},
		{args: []string{"auth", "can-i", "create", "pods"}, want: "yes"},
		{args: []string{"auth", "can-i", "delete", "secrets", "--as", "system:kube-scheduler"}, want: "no", fail: true},
		{args: []string{"auth", "can-i", "create", "pods", "--subresource", "binding", "--as", "system:kube-scheduler"}, want: "yes"},
		{args: []string{"auth", "whoami"}, want: "kubernetes-admin"},
		{args: []string{"create", "serviceaccount", "robot"}, want: "created"},
		{args: []string{"create", "token", "robot"}, want: "eyJ"},
		{args: []string{"get", "ns", "--as", "alice"}, want: `User "alice" cannot list resource "namespaces" in API group "" at the cluster scope`, fail: true},
	} {
		out, err := kubectl(c.args...)
		if (err != nil) != c.fail || !strings.Contains(out, c.want) {
			t.Errorf("kubectl %s: %v\n%s\nwant %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	// Without credentials: 401.
	ca, err := os.ReadFile(filepath.Join(dataDir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(url + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous list of namespaces: %s", resp.Status)
	}
}

func TestAPIServerReusesCA(t *testing.T) {
	dataDir := t.TempDir()
	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	_, stop := startAPIServer(t, APIServerOptions{Kubeconfig: kcfg, DataDir: dataDir})
	stop()
	first, err := os.ReadFile(filepath.Join(dataDir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	old, err := clientcmd.BuildConfigFromFlags("", kcfg)
	if err != nil {
		t.Fatal(err)
	}
	_, stop = startAPIServer(t, APIServerOptions{DataDir: dataDir})
	defer stop()
	second, err := os.ReadFile(filepath.Join(dataDir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("the CA changed across restarts")
	}
	// The first run's admin certificate still works against the second run.
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, pki.AdminKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	rc.TLSClientConfig.CertData, rc.TLSClientConfig.KeyData = old.TLSClientConfig.CertData, old.TLSClientConfig.KeyData
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatalf("old admin certificate: %v", err)
	}
}

func TestAPIServerInsecureHTTP(t *testing.T) {
	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	url, stop := startAPIServer(t, APIServerOptions{Kubeconfig: kcfg, DataDir: t.TempDir(), InsecureHTTP: true})
	defer stop()
	if !strings.HasPrefix(url, "http://") {
		t.Fatalf("url %s", url)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kcfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	if _, err := cs.CoreV1().Secrets("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
}

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
