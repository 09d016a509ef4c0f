// Package garbagecollector is the garbage collector ("garbagecollector"):
// an object whose every owner (by ownerReferences UID) is gone, or being
// deleted in the foreground, is deleted; references to owners that are
// gone are removed from an object that still has a live owner; an owner
// marked with the orphan finalizer has the references to it removed from
// its dependents, then the finalizer; one marked with foregroundDeletion
// loses the finalizer once no dependent with blockOwnerDeletion is left.
//
// Decide is the decision, from a dependent and the observed state of each
// owner; Controller is the edge: a dynamic informer per resource discovery
// lists (with list, watch and delete), an ownerUID → dependents index (the
// graph), owners absent from the caches confirmed by a live GET before
// anything is deleted, as upstream.
package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Name is the controller's older name in --controllers (upstream's alias).
const Name = "garbagecollector"

// OwnerState is what the collector observed of one owner reference.
type OwnerState int

const (
	// Solid: an object with the reference's UID exists and is not waiting
	// for its dependents' deletion.
	Solid OwnerState = iota
	// Dangling: no object with the reference's UID exists (absent, or
	// another object of that name with another UID).
	Dangling
	// Waiting: the owner is being deleted in the foreground (deletionTimestamp
	// and the foregroundDeletion finalizer).
	Waiting
)

// Action is what to do with a dependent.
type Action struct {
	// Delete the dependent with Policy (its own finalizers decide:
	// orphan → Orphan, foregroundDeletion → Foreground, else Background).
	Delete bool
	Policy metav1.DeletionPropagation
	// RemoveOwners are the owner UIDs whose references are removed (the
	// dependent stays: another owner is alive).
	RemoveOwners []types.UID
}

// Decide decides, as upstream's attemptToDeleteItem, what happens to dep
// given the state of each of its owners (an owner missing from states
// counts as Solid: never delete on missing knowledge). An object without
// owner references, or already being deleted, is left alone.
func Decide(dep metav1.Object, states map[types.UID]OwnerState) Action {
	refs := dep.GetOwnerReferences()
	if len(refs) == 0 || dep.GetDeletionTimestamp() != nil {
		return Action{}
	}
	var solid int
	var gone []types.UID
	for _, r := range refs {
		st, ok := states[r.UID]
		if !ok || st == Solid {
			solid++
			continue
		}
		gone = append(gone, r.UID)
	}
	if solid > 0 {
		if len(gone) == 0 {
			return Action{}
		}
		return Action{RemoveOwners: gone}
	}
	policy := metav1.DeletePropagationBackground
	switch fins := dep.GetFinalizers(); {
	case slices.Contains(fins, metav1.FinalizerOrphanDependents):
		policy = metav1.DeletePropagationOrphan
	case slices.Contains(fins, metav1.FinalizerDeleteDependents):
		policy = metav1.DeletePropagationForeground
	}
	return Action{Delete: true, Policy: policy}
}
