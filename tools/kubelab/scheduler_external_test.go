package main_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// startProcess starts bin with args, its output in a buffer shown on
// failure, and stops it when the test ends.
func startProcess(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), buf.String())
		}
	})
}

// waitReady waits until the API server of kubeconfig answers /readyz.
func waitReady(t *testing.T, kubeconfig string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			continue
		}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			continue
		}
		resp, err := hc.Get(cfg.Host + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatal("the API server did not become ready")
}

// TestSchedulerSuiteExternalProcess validates an out-of-process scheduler
// with the scheduler suite: a second `kubelab scheduler` process, serving
// schedulerName other-scheduler against a `kubelab apiserver` this test
// started, is the target; the suite only creates objects and watches.
func TestSchedulerSuiteExternalProcess(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	kcfg := filepath.Join(dir, "kubeconfig")
	startProcess(t, bin, "apiserver", "--store", "memory", "--listen", "127.0.0.1:0", "--kubeconfig", kcfg, "--data-dir", filepath.Join(dir, "data"))
	waitReady(t, kcfg)
	startProcess(t, bin, "scheduler", "--kubeconfig", kcfg, "--scheduler-name", "other-scheduler", "--leader-elect=false", "--listen", "")
	conformExternal(t, bin, dir, kcfg, "other-scheduler")
}

// TestSchedulerSuiteUpstreamKubeScheduler validates the upstream
// kube-scheduler, run against a `kubelab apiserver`, with the scheduler
// suite: what shows that the suite tests Kubernetes semantics. It needs
// $KUBELAB_KUBE_SCHEDULER, the path of a kube-scheduler binary.
func TestSchedulerSuiteUpstreamKubeScheduler(t *testing.T) {
	ks := os.Getenv("KUBELAB_KUBE_SCHEDULER")
	if ks == "" {
		t.Skip("set KUBELAB_KUBE_SCHEDULER to a kube-scheduler binary")
	}
	bin := build(t)
	dir := t.TempDir()
	kcfg := filepath.Join(dir, "kubeconfig")
	startProcess(t, bin, "apiserver", "--store", "memory", "--listen", "127.0.0.1:0", "--kubeconfig", kcfg, "--data-dir", filepath.Join(dir, "data"))
	waitReady(t, kcfg)
	startProcess(t, ks, "--kubeconfig", kcfg, "--leader-elect=false", "--secure-port=0", "--kube-api-qps=500", "--kube-api-burst=1000")
	conformExternal(t, bin, dir, kcfg, "default-scheduler")
}

// conformExternal runs the scheduler suite against the external scheduler
// serving name on the API server of kcfg and checks that every spec passed.
func conformExternal(t *testing.T, bin, dir, kcfg, name string) {
	t.Helper()
	report := filepath.Join(dir, "report")
	cmd := exec.Command(bin, "conform", "--suite", "scheduler", "--scheduler-name", name,
		"--scheduler-apiserver", kcfg, "--report", report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubelab conform against the external scheduler: %v\n%s", err, out)
	}
	md, err := os.ReadFile(filepath.Join(report, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"external:" + name, "scheduler:burst", "scheduler:preemption"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md does not mention %s:\n%s", want, md)
		}
	}
	if !strings.Contains(string(out), "0 failed, 0 skipped") {
		t.Errorf("want every spec passed:\n%s", out)
	}
}
