package critools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/spec/freeport"
	"github.com/kubelab/kubelab/spec/ociimage"
	"github.com/kubelab/kubelab/tools/critools"
)

// buildKubelab builds the kubelab binary into dir.
func buildKubelab(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kubelab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kubelab/kubelab/tools/kubelab").CombinedOutput(); err != nil {
		t.Fatalf("go build kubelab: %v\n%s", err, out)
	}
	return bin
}

// TestCrictlDrivesTheProcessRuntime serves the process runtime with
// `kubelab runtime --listen` and drives a pod's whole life with crictl,
// the CRI command line users and node e2e tests use: runp, create, start,
// ps, logs, exec, inspect, stop, rm, stopp, rmp.
func TestCrictlDrivesTheProcessRuntime(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("builds crictl and kubelab, and needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	crictlBin, err := critools.Crictl(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	images, err := containerd.BuildTestImages(ctx, filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := critools.KubelabRuntime(ctx, buildKubelab(t, dir), dir, "10.199.97.0/24", "crictl", images)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})

	config := filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(config, []byte("runtime-endpoint: "+srv.Endpoint+"\nimage-endpoint: "+srv.Endpoint+"\ntimeout: 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	crictl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, crictlBin, append([]string{"--config", config}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	writeJSON := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	if out := crictl("version"); !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Errorf("crictl version:\n%s", out)
	}
	if out := crictl("images"); !strings.Contains(out, "kubelab.local/workload") || !strings.Contains(out, "kubelab.local/busybox") {
		t.Errorf("crictl images:\n%s", out)
	}
	logDir := filepath.Join(dir, "pod-logs")
	podCfg := writeJSON("pod.json", map[string]any{
		"metadata":      map[string]string{"name": "crictl-pod", "namespace": "default", "uid": "crictl-uid"},
		"hostname":      "crictl-pod",
		"log_directory": logDir,
	})
	ctrCfg := writeJSON("container.json", map[string]any{
		"metadata": map[string]string{"name": "logger"},
		"image":    map[string]string{"image": ociimage.WorkloadImageName},
		"args":     []string{"logs", "--lines", "2", "--keep-running"},
		"log_path": "logger.log",
	})

	pod := strings.TrimSpace(crictl("runp", podCfg))
	if out := crictl("pods", "--id", pod, "-q"); strings.TrimSpace(out) != pod {
		t.Errorf("crictl pods --id %s -q = %q", pod, out)
	}
	ctr := strings.TrimSpace(crictl("create", pod, ctrCfg, podCfg))
	if out := crictl("ps", "-a", "--id", ctr); !strings.Contains(out, "Created") {
		t.Errorf("crictl ps -a after create:\n%s", out)
	}
	crictl("start", ctr)
	if out := crictl("ps", "--id", ctr); !strings.Contains(out, "Running") || !strings.Contains(out, "logger") {
		t.Errorf("crictl ps after start:\n%s", out)
	}
	for {
		out := crictl("logs", ctr)
		if strings.Contains(out, "stdout line 2") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("crictl logs never showed the lines: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := crictl("logs", "--tail", "1", ctr); strings.Contains(out, "stdout line 1") {
		t.Errorf("crictl logs --tail 1 = %q", out)
	}
	// -s: ExecSync.
	if out := crictl("exec", "-s", ctr, "/workload", "print", "via-crictl"); !strings.Contains(out, "arg[0]=via-crictl") || !strings.Contains(out, "hostname=crictl-pod") {
		t.Errorf("crictl exec -s:\n%s", out)
	}
	// Without -s: the streaming Exec, through the runtime's streaming server.
	if out := crictl("exec", ctr, "/workload", "print", "via-stream"); !strings.Contains(out, "arg[0]=via-stream") || !strings.Contains(out, "hostname=crictl-pod") {
		t.Errorf("crictl exec (streaming):\n%s", out)
	}
	// port-forward to an HTTP server in the pod.
	webCfg := writeJSON("web.json", map[string]any{
		"metadata": map[string]string{"name": "web"},
		"image":    map[string]string{"image": ociimage.WorkloadImageName},
		"args":     []string{"serve-hostname", "--port", "9376"},
		"log_path": "web.log",
	})
	web := strings.TrimSpace(crictl("create", pod, webCfg, podCfg))
	crictl("start", web)
	if got := portForwardGet(ctx, t, crictlBin, config, pod, 9376); got != "crictl-pod" {
		t.Errorf("GET through crictl port-forward = %q, want the pod's hostname", got)
	}
	crictl("rm", "-f", web)
	var inspect struct {
		Status struct {
			State string `json:"state"`
			Image struct {
				Image string `json:"image"`
			} `json:"image"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(crictl("inspect", "-o", "json", ctr)), &inspect); err != nil || inspect.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("crictl inspect: %+v, %v", inspect, err)
	}
	crictl("stop", "--timeout", "10", ctr)
	if out := crictl("ps", "-a", "--id", ctr); !strings.Contains(out, "Exited") {
		t.Errorf("crictl ps -a after stop:\n%s", out)
	}
	crictl("rm", ctr)
	if out := strings.TrimSpace(crictl("ps", "-a", "-q")); out != "" {
		t.Errorf("crictl ps -a -q after rm = %q", out)
	}
	crictl("stopp", pod)
	crictl("rmp", pod)
	if out := strings.TrimSpace(crictl("pods", "-q")); out != "" {
		t.Errorf("crictl pods -q after rmp = %q", out)
	}
}

// portForwardGet runs `crictl port-forward POD LOCAL:port` and returns the
// body of an HTTP GET / through it (retried until the server in the pod
// answers).
func portForwardGet(ctx context.Context, t *testing.T, crictlBin, config, pod string, port int) string {
	t.Helper()
	free, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	local := free[0]
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(pctx, crictlBin, "--config", config, "port-forward", pod, fmt.Sprintf("%d:%d", local, port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", local))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return strings.TrimSpace(string(body))
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no answer through crictl port-forward: %v\n%s", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
