package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/controllers"
	"github.com/kubelab/kubelab/spec/spectest"
)

func nsCondition(ns *corev1.Namespace, t corev1.NamespaceConditionType) *corev1.NamespaceCondition {
	for i := range ns.Status.Conditions {
		if ns.Status.Conditions[i].Type == t {
			return &ns.Status.Conditions[i]
		}
	}
	return nil
}

// TestNamespaceDeletion: DELETE of a namespace holding ConfigMaps, Secrets
// and a Deployment with its pods marks it Terminating; the namespace
// controller (as the controller manager's identity, through RBAC) deletes
// the content, reports what remains while a finalizer holds an object, and
// once that goes removes the `kubernetes` finalizer, and the namespace is
// gone. A dry-run delete first changes nothing.
func TestNamespaceDeletion(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) { c.RootCA = api.CA.CertPEM })
	ctx := context.Background()
	const ns = "doomed"
	newNamespace(t, cs, ns)
	for _, name := range []string{"a", "b"} {
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const hold = "example.com/hold"
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{hold}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := spectest.MakeDeployment().Image("img:v1").Obj()
	d.Namespace, d.UID, d.Generation = ns, "", 0
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deployment's pods", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == int(*d.Spec.Replicas), nil
	})

	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("namespace after a dry-run delete: %v %v", n, err)
	}

	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || n.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace after DELETE: %v %v, want Terminating", n, err)
	}
	eventually(t, "content gone but the held ConfigMap; conditions report it", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		remaining, fins := nsCondition(n, corev1.NamespaceContentRemaining), nsCondition(n, corev1.NamespaceFinalizersRemaining)
		if remaining == nil || remaining.Status != corev1.ConditionTrue || fins == nil || fins.Status != corev1.ConditionTrue ||
			!strings.Contains(remaining.Message, "configmaps has 1 resource instances") || !strings.Contains(fins.Message, hold) {
			return false, nil
		}
		if c := nsCondition(n, corev1.NamespaceDeletionContentFailure); c == nil || c.Status != corev1.ConditionFalse {
			t.Fatalf("content failure condition %+v while only a finalizer holds content", c)
		}
		cms, _ := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		secrets, _ := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		deploys, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		rss, _ := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		return len(cms.Items) == 1 && cms.Items[0].Name == "held" && cms.Items[0].DeletionTimestamp != nil &&
			len(secrets.Items)+len(pods.Items)+len(deploys.Items)+len(rss.Items) == 0, nil
	})
	if n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || len(n.Spec.Finalizers) != 1 {
		t.Fatalf("namespace finalized while content remained: %v %v", n, err)
	}

	if _, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx, "held", types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace gone", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
