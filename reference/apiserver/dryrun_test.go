package apiserver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// namespaceWithConfigMap creates namespace ns holding the ConfigMap "x" and
// waits until the watch cache has it (namespace deletion reads the cache).
func namespaceWithConfigMap(t *testing.T, s *apiservertest.Server, ns string) (*corev1.Namespace, *corev1.ConfigMap) {
	t.Helper()
	ctx := ctxT(t)
	n, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := s.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitCached(t, s, func() bool {
		l, _ := s.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		return l != nil && len(l.Items) == 1
	})
	return n, cm
}

// wantUnchanged fails unless the namespace and its ConfigMap are still there
// at the resourceVersions given.
func wantUnchanged(t *testing.T, c kubernetes.Interface, n *corev1.Namespace, cm *corev1.ConfigMap) {
	t.Helper()
	ctx := ctxT(t)
	got, err := c.CoreV1().Namespaces().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace after a dry-run delete: %v", err)
	}
	if got.ResourceVersion != n.ResourceVersion || got.DeletionTimestamp != nil || got.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("namespace changed by a dry-run delete: rv %s -> %s, deletionTimestamp %v, phase %s",
			n.ResourceVersion, got.ResourceVersion, got.DeletionTimestamp, got.Status.Phase)
	}
	gotCM, err := c.CoreV1().ConfigMaps(n.Name).Get(ctx, cm.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap after a dry-run delete of its namespace: %v", err)
	}
	if gotCM.ResourceVersion != cm.ResourceVersion {
		t.Fatalf("ConfigMap changed by a dry-run delete of its namespace: rv %s -> %s", cm.ResourceVersion, gotCM.ResourceVersion)
	}
}

// TestNamespaceDryRunDeleteChangesNothing: DELETE namespace?dryRun=All
// answers as a delete would and leaves the namespace and its content as they
// were (issue 12: it used to empty the namespace).
func TestNamespaceDryRunDeleteChangesNothing(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	n, cm := namespaceWithConfigMap(t, s, "dry")
	if err := s.Client.CoreV1().Namespaces().Delete(ctxT(t), "dry", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run delete: %v", err)
	}
	wantUnchanged(t, s.Client, n, cm)

	// The real delete marks it Terminating (its content is the namespace
	// controller's to delete).
	if err := s.Client.CoreV1().Namespaces().Delete(ctxT(t), "dry", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Client.CoreV1().Namespaces().Get(ctxT(t), "dry", metav1.GetOptions{}); err != nil || got.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace after its delete: %v, %v; want Terminating", got, err)
	}
}

// TestKubectlDeleteNamespaceServerDryRun: `kubectl delete ns X
// --dry-run=server` says what upstream's kubectl says and changes nothing.
func TestKubectlDeleteNamespaceServerDryRun(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	k := newKubectl(t, s)
	n, cm := namespaceWithConfigMap(t, s, "drykubectl")
	out := k.run("delete", "namespace", "drykubectl", "--dry-run=server")
	wantContains(t, "delete --dry-run=server", out, `namespace "drykubectl" deleted (server dry run)`)
	wantUnchanged(t, s.Client, n, cm)
}
