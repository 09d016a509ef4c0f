package controller

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Claim is what a controller does with one candidate object (a pod for a
// ReplicaSet, a ReplicaSet for a Deployment).
type Claim int

const (
	// Ignore: the object is not the controller's and stays so (another
	// controller owns it, the selector does not match an orphan, or the
	// owner or the object is being deleted).
	Ignore Claim = iota
	// Keep: the object is the controller's and matches its selector.
	Keep
	// Adopt: an orphan matching the selector; the controller sets itself
	// as its controllerRef before counting it.
	Adopt
	// Release: the controller's object no longer matches the selector; the
	// controller removes its controllerRef (orphaning it).
	Release
)

// String names the claim.
func (c Claim) String() string {
	return [...]string{"Ignore", "Keep", "Adopt", "Release"}[c]
}

// Decide says what owner does with obj under selector, as upstream's
// ControllerRefManager.ClaimObject: the object's controllerRef (the
// ownerReference with controller=true) decides ownership; the label
// selector decides adoption of orphans and release of owned objects. An
// owner being deleted neither adopts nor releases; an object being deleted
// is not adopted.
func Decide(owner metav1.Object, selector labels.Selector, obj metav1.Object) Claim {
	ref := metav1.GetControllerOfNoCopy(obj)
	matches := selector.Matches(labels.Set(obj.GetLabels()))
	if ref != nil {
		if ref.UID != owner.GetUID() {
			return Ignore
		}
		if matches {
			return Keep
		}
		if owner.GetDeletionTimestamp() != nil {
			return Ignore
		}
		return Release
	}
	if owner.GetDeletionTimestamp() != nil || !matches || obj.GetDeletionTimestamp() != nil {
		return Ignore
	}
	return Adopt
}

// Patcher applies a merge patch to one object of a kind (a typed client's
// Patch with the type fixed).
type Patcher func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) error

// ownerRefsPatch is a merge patch replacing obj's ownerReferences with
// refs, guarded by obj's resourceVersion and UID so that it fails with a
// conflict instead of overwriting a change the controller did not see.
func ownerRefsPatch(obj metav1.Object, refs []metav1.OwnerReference) ([]byte, error) {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "resourceVersion": obj.GetResourceVersion(), "uid": obj.GetUID(),
	}})
}

// NewControllerRef is the controllerRef owner sets on objects it creates
// or adopts: controller=true, blockOwnerDeletion=true.
func NewControllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: owner.GetName(),
		UID: owner.GetUID(), Controller: &t, BlockOwnerDeletion: &t}
}

// AdoptObject makes owner obj's controller through patch. A conflict (obj
// changed since it was read) is returned for the caller to retry; a
// vanished object is not an error.
func AdoptObject(ctx context.Context, patch Patcher, owner metav1.Object, gvk schema.GroupVersionKind, obj metav1.Object) error {
	refs := append(append([]metav1.OwnerReference(nil), obj.GetOwnerReferences()...), NewControllerRef(owner, gvk))
	data, err := ownerRefsPatch(obj, refs)
	if err != nil {
		return err
	}
	if err := patch(ctx, obj.GetName(), types.MergePatchType, data, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("adopt %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// ReleaseObject removes owner's ownerReference from obj through patch (a
// vanished object is not an error).
func ReleaseObject(ctx context.Context, patch Patcher, owner metav1.Object, obj metav1.Object) error {
	var refs []metav1.OwnerReference
	for _, r := range obj.GetOwnerReferences() {
		if r.UID != owner.GetUID() {
			refs = append(refs, r)
		}
	}
	data, err := ownerRefsPatch(obj, refs)
	if err != nil {
		return err
	}
	if err := patch(ctx, obj.GetName(), types.MergePatchType, data, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
