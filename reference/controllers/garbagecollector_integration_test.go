package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/controllers"
)

func ownerRef(cm *corev1.ConfigMap) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}
}

// TestGarbageCollectorBackground: once an owner is deleted (background
// propagation), its dependents are deleted by the collector; a dependent
// with another live owner only loses the reference to the one gone; an
// object whose owner reference names a live object's name but another UID
// is deleted too; one with a live owner stays.
func TestGarbageCollectorBackground(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) {
		c.Controllers = []string{"garbagecollector"}
	})
	ctx := context.Background()
	const ns = "gc"
	newNamespace(t, cs, ns)
	cms := cs.CoreV1().ConfigMaps(ns)
	mk := func(name string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
		t.Helper()
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	owner, other := mk("owner"), mk("other")
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dep", OwnerReferences: []metav1.OwnerReference{ownerRef(owner)}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mk("shared", ownerRef(owner), ownerRef(other))
	mk("kept", ownerRef(other))
	stale := ownerRef(other)
	stale.UID = "not-others-uid"
	mk("stale", stale)

	if err := cms.Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dependents of the deleted owner collected", func(ctx context.Context) (bool, error) {
		_, errDep := cs.CoreV1().Secrets(ns).Get(ctx, "dep", metav1.GetOptions{})
		_, errStale := cms.Get(ctx, "stale", metav1.GetOptions{})
		shared, err := cms.Get(ctx, "shared", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			t.Fatalf("a dependent with a live owner was deleted: %v", err)
		}
		if err != nil {
			return false, nil
		}
		return apierrors.IsNotFound(errDep) && apierrors.IsNotFound(errStale) &&
			len(shared.OwnerReferences) == 1 && shared.OwnerReferences[0].UID == other.UID, nil
	})
	if k, err := cms.Get(ctx, "kept", metav1.GetOptions{}); err != nil || len(k.OwnerReferences) != 1 {
		t.Fatalf("dependent of a live owner: %v %v", k, err)
	}
}

// TestGarbageCollectorOrphanAndForeground: Orphan strips the owner
// reference from dependents, then the owner goes; Foreground deletes the
// dependents, and the owner waits for the ones with blockOwnerDeletion.
func TestGarbageCollectorOrphanAndForeground(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) {
		c.Controllers = []string{"garbagecollector"}
	})
	ctx := context.Background()
	const ns = "gcfg"
	newNamespace(t, cs, ns)
	cms := cs.CoreV1().ConfigMaps(ns)
	mk := func(name string, fins []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
		t.Helper()
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fins, OwnerReferences: owners}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	gone := func(name string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			_, err := cms.Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}
	}

	o := mk("o", nil)
	mk("od", nil, ownerRef(o))
	orphan := metav1.DeletePropagationOrphan
	if err := cms.Delete(ctx, "o", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "orphaning owner gone", gone("o"))
	if od, err := cms.Get(ctx, "od", metav1.GetOptions{}); err != nil || len(od.OwnerReferences) != 0 {
		t.Fatalf("orphaned dependent: %+v %v, want it kept without owner references", od, err)
	}

	const hold = "example.com/hold"
	f := mk("f", nil)
	blocking := ownerRef(f)
	blocking.BlockOwnerDeletion = ptrTrue()
	mk("fb", []string{hold}, blocking)
	mk("fn", nil, ownerRef(f))
	fg := metav1.DeletePropagationForeground
	if err := cms.Delete(ctx, "f", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "non-blocking dependent deleted, blocking one marked", func(ctx context.Context) (bool, error) {
		fb, err := cms.Get(ctx, "fb", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		_, errFn := cms.Get(ctx, "fn", metav1.GetOptions{})
		return apierrors.IsNotFound(errFn) && fb.DeletionTimestamp != nil, nil
	})
	if owner, err := cms.Get(ctx, "f", metav1.GetOptions{}); err != nil || owner.DeletionTimestamp == nil {
		t.Fatalf("foreground owner while a blocking dependent remains: %+v %v, want it kept, marked", owner, err)
	}
	if _, err := cms.Patch(ctx, "fb", types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "foreground owner gone after its blocking dependent", gone("f"))
}

func ptrTrue() *bool { b := true; return &b }
