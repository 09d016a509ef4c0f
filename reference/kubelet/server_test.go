package kubelet_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubelab/kubelab/plugins/runtime/hollow"
	"github.com/kubelab/kubelab/reference/kubelet"
)

// TestKubeletAPI serves the kubelet API over a hollow node with a fake
// API server that knows one token (alice's) and lets alice use
// nodes/proxy but not nodes/stats.
func TestKubeletAPI(t *testing.T) {
	client := fake.NewClientset()
	var (
		mu   sync.Mutex // guards sars
		sars []authorizationv1.ResourceAttributes
	)
	client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		switch tr.Spec.Token {
		case "alice-token":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "alice", Groups: []string{"devs"}}}
		case "metrics-token":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "metrics"}}
		}
		return true, tr, nil
	})
	client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		ra := *sar.Spec.ResourceAttributes
		mu.Lock()
		sars = append(sars, ra)
		mu.Unlock()
		sar.Status.Allowed = ra.Resource == "nodes" && ra.Name == "n1" && ra.Verb == "get" &&
			((sar.Spec.User == "alice" && ra.Subresource == "proxy") || (sar.Spec.User == "metrics" && ra.Subresource == "stats"))
		return true, sar, nil
	})
	root := t.TempDir()
	ctx, _, k := runKubeletObject(t, client, hollow.New(hollow.Options{}), func(c *kubelet.Config) { c.RootDir = root })
	pod := hollowPod("web", corev1.RestartPolicyAlways, nil)
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "web running", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	// The hollow runtime writes no logs: write the one the kubelet reads.
	logPath := kubelet.ContainerLogPath(filepath.Join(root, "logs"), pod, "main", 0)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, []byte("2026-01-02T03:04:05Z stdout F hello\n2026-01-02T03:04:06Z stdout F world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(k.Authenticated(k.Handler()))
	defer srv.Close()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code, _ := get("/healthz", "mallory-token"); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", code)
	}
	if code, body := get("/healthz", "alice-token"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/stats/summary", "alice-token"); code != http.StatusForbidden {
		t.Errorf("/stats/summary without nodes/stats: %d, want 403", code)
	}
	code, body := get("/stats/summary", "metrics-token")
	var sum kubelet.Summary
	if code != http.StatusOK || json.Unmarshal([]byte(body), &sum) != nil {
		t.Fatalf("/stats/summary: %d %s", code, body)
	}
	if sum.Node.NodeName != "n1" || sum.Node.Memory == nil || sum.Node.CPU == nil || len(sum.Pods) != 1 ||
		sum.Pods[0].PodRef.Name != "web" || len(sum.Pods[0].Containers) != 1 || sum.Pods[0].Containers[0].Name != "main" {
		t.Errorf("summary %s", body)
	}
	if code, _ := get("/pods", "metrics-token"); code != http.StatusForbidden {
		t.Errorf("/pods with nodes/stats only: %d, want 403", code)
	}
	code, body = get("/pods", "alice-token")
	var list corev1.PodList
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Items) != 1 || list.Items[0].Name != "web" {
		t.Errorf("/pods: %d %s", code, body)
	}
	if code, body := get("/containerLogs/default/web/main", "alice-token"); code != http.StatusOK || body != "hello\nworld\n" {
		t.Errorf("logs: %d %q", code, body)
	}
	if code, body := get("/containerLogs/default/web/main?tailLines=1&timestamps=true", "alice-token"); code != http.StatusOK || body != "2026-01-02T03:04:06Z world\n" {
		t.Errorf("logs, tail 1 with timestamps: %d %q", code, body)
	}
	if code, _ := get("/containerLogs/default/web/nope", "alice-token"); code != http.StatusBadRequest {
		t.Errorf("logs of an unknown container: %d, want 400", code)
	}
	if code, _ := get("/containerLogs/default/absent/main", "alice-token"); code != http.StatusNotFound {
		t.Errorf("logs of an unknown pod: %d, want 404", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sars) == 0 || sars[len(sars)-1].Subresource != "proxy" {
		t.Errorf("access reviews %+v", sars)
	}
}
