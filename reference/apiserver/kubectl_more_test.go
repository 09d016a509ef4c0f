package apiserver_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// streamLines starts a long-running kubectl (e.g. get -w) and returns its
// stdout lines as they come; the process is killed at the end of the test.
func (k *kubectl) streamLines(args ...string) <-chan string {
	k.t.Helper()
	cmd := exec.Command(k.bin, append([]string{"--kubeconfig", k.kcfg, "--cache-dir", filepath.Join(k.dir, "cache")}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+k.dir, "KUBECONFIG="+k.kcfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		k.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if stderr.Len() > 0 {
			k.t.Logf("kubectl %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// waitLine reads lines until one has every field of want (split on
// blanks), in order; it fails the test after 30s or if the stream ends.
func waitLine(t *testing.T, lines <-chan string, want ...string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl ended before a line with %q; got:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			f := strings.Fields(l)
			if len(f) >= len(want) && hasFieldsInOrder(f, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line with %q within 30s; got:\n%s", want, strings.Join(seen, "\n"))
		}
	}
}

func hasFieldsInOrder(fields, want []string) bool {
	i := 0
	for _, f := range fields {
		if i < len(want) && f == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestKubectlWatch: kubectl get -w prints the current objects, then every
// change as it happens.
func TestKubectlWatch(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	k := newKubectl(t, s)
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := k.streamLines("get", "configmaps", "-w", "--output-watch-events")
	waitLine(t, lines, "EVENT", "NAME", "DATA", "AGE")
	waitLine(t, lines, "ADDED", "before", "1")

	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "during"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "ADDED", "during", "1")
	cm.Data["b"] = "2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "MODIFIED", "during", "2")
	if err := cms.Delete(ctx, "during", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "DELETED", "during", "2")

	// Plain -w on pods, as people type it: the table, then new rows.
	pods := k.streamLines("get", "pods", "-w")
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("watched", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, pods, "watched", "0/1", "Pending")
}

// TestKubectlAuthCanI: kubectl auth can-i answers yes for the cluster admin
// and for what RBAC grants another user, no for everything else; a denied
// request is a Forbidden naming the user.
func TestKubectlAuthCanI(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	admin := newKubectl(t, s)
	if out := admin.run("auth", "can-i", "create", "deployments"); strings.TrimSpace(out) != "yes" {
		t.Fatalf("admin can-i create deployments: %q", out)
	}
	if out := admin.run("auth", "can-i", "delete", "nodes"); strings.TrimSpace(out) != "yes" {
		t.Fatalf("admin can-i delete nodes: %q", out)
	}

	jane := newKubectlAs(t, s, pki.Identity{User: "jane", Groups: []string{"developers"}})
	out, _, err := jane.try("auth", "can-i", "list", "pods")
	if strings.TrimSpace(out) != "no" || err == nil {
		t.Fatalf("jane can-i list pods before any binding: %q, %v (want no, exit 1)", out, err)
	}

	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader", Namespace: "default"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}}
	if _, err := s.Client.RbacV1().Roles("default").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "developers-read-pods", Namespace: "default"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "developers"}}}
	if _, err := s.Client.RbacV1().RoleBindings("default").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "pods"}, "yes"},
		{[]string{"get", "pods/anything"}, "yes"},
		{[]string{"delete", "pods"}, "no"},
		{[]string{"list", "pods", "-n", "kube-system"}, "no"},
		{[]string{"list", "secrets"}, "no"},
	} {
		out, _, err := jane.try(append([]string{"auth", "can-i"}, c.args...)...)
		if strings.TrimSpace(out) != c.want || (err == nil) != (c.want == "yes") {
			t.Errorf("jane can-i %s: %q, %v; want %s", strings.Join(c.args, " "), out, err, c.want)
		}
	}
	jane.run("get", "pods") // allowed: succeeds
	_, errOut, err := jane.try("get", "secrets")
	if err == nil || !strings.Contains(errOut, `User "jane" cannot list resource "secrets" in API group "" in the namespace "default"`) {
		t.Fatalf("jane get secrets: %v, stderr %q", err, errOut)
	}
}

// TestKubectlDescribeEvents: kubectl describe lists the events about the
// object.
func TestKubectlDescribeEvents(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	k := newKubectl(t, s)
	ctx := context.Background()
	p, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("described", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	for _, ev := range []*corev1.Event{
		{ObjectMeta: metav1.ObjectMeta{Name: "described.1", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: p.Name, UID: p.UID, APIVersion: "v1"},
			Reason:         "Scheduled", Message: "Successfully assigned default/described to node-1", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "default-scheduler"}, FirstTimestamp: now, LastTimestamp: now, Count: 1},
		{ObjectMeta: metav1.ObjectMeta{Name: "described.2", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: p.Name, UID: p.UID, APIVersion: "v1"},
			Reason:         "BackOff", Message: "Back-off pulling image \"i\"", Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 3},
		// About another pod: describe must not show it.
		{ObjectMeta: metav1.ObjectMeta{Name: "other.1", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "other", UID: "0000", APIVersion: "v1"},
			Reason:         "Killing", Message: "Stopping container c", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1},
	} {
		if _, err := s.Client.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	out := k.run("describe", "pod", "described")
	wantContains(t, "describe pod events", out, "Events:", "Type", "Reason", "From", "Message",
		"Scheduled", "default-scheduler", "Successfully assigned default/described to node-1",
		"Warning", "BackOff", "Back-off pulling image")
	if strings.Contains(out, "Stopping container c") {
		t.Fatalf("describe shows another pod's event:\n%s", out)
	}
	out = k.run("get", "events", "--field-selector", "involvedObject.name=described", "-o", "name")
	if got := strings.Fields(out); len(got) != 2 {
		t.Fatalf("get events by involvedObject.name: %q", out)
	}
}
