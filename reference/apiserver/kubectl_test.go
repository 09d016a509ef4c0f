package apiserver_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
`

// kubectl runs the installed kubectl against a test server (started with
// apiservertest.StartSecure) as the cluster admin.
type kubectl struct {
	t         *testing.T
	bin, kcfg string
	dir       string
	env       []string // extra environment for the next runs
}

func newKubectl(t *testing.T, s *apiservertest.Server) *kubectl {
	return newKubectlAs(t, s, pki.AdminIdentity())
}

// newKubectlAs is newKubectl for the user id.
func newKubectlAs(t *testing.T, s *apiservertest.Server, id pki.Identity) *kubectl {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	dir := t.TempDir()
	kcfg := filepath.Join(dir, "kubeconfig")
	// A kubeconfig as kubelab apiserver writes the cluster admin's.
	client, err := s.CA.IssueClient(id)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.Kubeconfig(s.HTTP.URL, pki.DefaultClusterName, s.CA.CertPEM, client)
	for _, c := range cfg.Contexts {
		c.Namespace = "default"
	}
	if err := pki.WriteKubeconfig(kcfg, cfg); err != nil {
		t.Fatal(err)
	}
	return &kubectl{t: t, bin: bin, kcfg: kcfg, dir: dir}
}

// run runs kubectl with args and returns its stdout; a failure fails the test.
func (k *kubectl) run(args ...string) string {
	k.t.Helper()
	out, errOut, err := k.try(args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (k *kubectl) try(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.kcfg, "--cache-dir", filepath.Join(k.dir, "cache")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(append(os.Environ(), "HOME="+k.dir, "KUBECONFIG="+k.kcfg), k.env...)
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func wantContains(t *testing.T, what, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Fatalf("%s: output lacks %q:\n%s", what, s, out)
		}
	}
}

func TestKubectlSmoke(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	k := newKubectl(t, s)
	mf := filepath.Join(k.dir, "app.yaml")
	if err := os.WriteFile(mf, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	// The OpenAPI v3 paths tell kubectl that the server validates fields:
	// no --validate=false needed.
	out := k.run("apply", "-f", mf)
	wantContains(t, "apply", out, "deployment.apps/web created", "service/web created")
	out = k.run("apply", "-f", mf)
	wantContains(t, "re-apply", out, "deployment.apps/web unchanged", "service/web unchanged")

	// A changed manifest is patched (strategic merge), an unknown field
	// rejected by the server's strict field validation.
	changed := filepath.Join(k.dir, "changed.yaml")
	if err := os.WriteFile(changed, []byte(strings.Replace(manifest, "nginx:1.27", "nginx:1.28", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out = k.run("apply", "-f", changed)
	wantContains(t, "apply changed", out, "deployment.apps/web configured", "service/web unchanged")
	out = k.run("apply", "-f", mf)
	wantContains(t, "apply back", out, "deployment.apps/web configured")
	bogus := filepath.Join(k.dir, "bogus.yaml")
	if err := os.WriteFile(bogus, []byte(strings.Replace(manifest, "  replicas: 2", "  replicas: 2\n  bogusField: 1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := k.try("apply", "-f", bogus)
	if err == nil || !strings.Contains(errOut, `unknown field "spec.bogusField"`) {
		t.Fatalf("apply with an unknown field: err %v, stderr %q", err, errOut)
	}

	out = k.run("get", "deployments", "-o", "wide")
	wantContains(t, "get deploy -o wide", out, "NAME", "READY", "UP-TO-DATE", "CONTAINERS", "IMAGES", "SELECTOR", "web", "0/2", "nginx:1.27", "app=web")

	out = k.run("get", "all")
	wantContains(t, "get all", out, "service/kubernetes", "service/web", "deployment.apps/web", "ClusterIP")

	out = k.run("label", "deployment", "web", "tier=front")
	wantContains(t, "label", out, "deployment.apps/web labeled")
	out = k.run("get", "deploy", "-l", "tier=front", "-o", "name")
	if strings.TrimSpace(out) != "deployment.apps/web" {
		t.Fatalf("get -l: %q", out)
	}

	out = k.run("scale", "deployment", "web", "--replicas=3")
	wantContains(t, "scale", out, "deployment.apps/web scaled")
	out = k.run("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}")
	if out != "3" {
		t.Fatalf("replicas after scale: %q", out)
	}

	// A pod bound to a node, with an IP: -o wide shows NODE and IP.
	ctx := context.Background()
	p := pod("web-pod", map[string]string{"app": "web"})
	p.Spec.NodeName = "node-1"
	p, err = s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.PodIP = "10.244.1.7"
	p.Status.Phase = corev1.PodRunning
	if _, err := s.Client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out = k.run("get", "pods", "-o", "wide")
	wantContains(t, "get pods -o wide", out, "NODE", "IP", "web-pod", "Running", "10.244.1.7", "node-1")

	out = k.run("get", "deployment", "web", "-o", "yaml")
	wantContains(t, "get -o yaml", out, "kind: Deployment", "replicas: 3", "tier: front", "resourceVersion:")

	out = k.run("describe", "pod", "web-pod")
	wantContains(t, "describe pod", out, "Name:", "web-pod", "Node:", "node-1", "10.244.1.7", "Events:")
	out = k.run("describe", "deployment", "web")
	wantContains(t, "describe deployment", out, "Replicas:", "3 desired", "nginx:1.27")

	// kubectl edit, with a scripted editor.
	editor := filepath.Join(k.dir, "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/replicas: 3/replicas: 4/' \"$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	k.env = []string{"KUBE_EDITOR=" + editor}
	out = k.run("edit", "deployment", "web")
	k.env = nil
	wantContains(t, "edit", out, "deployment.apps/web edited")
	if out = k.run("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"); out != "4" {
		t.Fatalf("replicas after edit: %q", out)
	}

	out = k.run("api-resources")
	wantContains(t, "api-resources", out, "pods", "po", "Pod", "deployments", "deploy", "apps/v1", "leases", "coordination.k8s.io/v1", "resourceslices")
	out = k.run("get", "pods", "-A")
	wantContains(t, "get pods -A", out, "NAMESPACE", "default", "web-pod")

	out = k.run("get", "ns")
	wantContains(t, "get ns", out, "default", "kube-system", "Active")

	_, errOut, err = k.try("get", "pods", "--selector", "a in ((")
	if err == nil || !strings.Contains(errOut, "unable to parse requirement") {
		t.Fatalf("bad selector: err %v, stderr %q", err, errOut)
	}
	_, errOut, err = k.try("get", "frobnicators")
	if err == nil || !strings.Contains(errOut, `the server doesn't have a resource type "frobnicators"`) {
		t.Fatalf("unknown resource: err %v, stderr %q", err, errOut)
	}

	out = k.run("delete", "-f", mf)
	wantContains(t, "delete", out, `deployment.apps "web" deleted`, `service "web" deleted`)
	out = k.run("get", "deployments")
	if strings.Contains(out, "web") {
		t.Fatalf("deployment survives delete:\n%s", out)
	}
}
