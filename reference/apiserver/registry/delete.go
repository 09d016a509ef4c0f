package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/spec"
)

// DeleteOptions are metav1.DeleteOptions plus the admission chain.
type DeleteOptions struct {
	metav1.DeleteOptions
	// Admission validates the delete (operation DELETE, the stored object
	// as OldObject, no Object; no mutating step); nil admits it unchecked
	// (the server's own deletes).
	Admission admission.Interface
}

// Delete deletes the object namespace/name of r, honouring preconditions,
// the grace period (pods bound to a node get a deletionTimestamp and are
// removed when their kubelet deletes them with grace period 0), finalizers
// (the object stays, with a deletionTimestamp, until they are gone) and
// propagationPolicy (Orphan and Foreground mark the owner with the orphan
// or foregroundDeletion finalizer, which the controller manager's garbage
// collector acts on and removes; Background deletes the owner and leaves
// its dependents to the collector). Deleting a namespace marks it Terminating (status.phase, a
// deletionTimestamp); it stays until its spec.finalizers are gone too (the
// namespace controller empties it, then removes the `kubernetes` finalizer
// through namespaces/finalize). It returns the deleted — or, when
// pending, the marked — object, and whether it is gone from the store.
//
// Each attempt decides first (decideDelete: preconditions, propagation,
// grace period, the mark), then admits, and only then acts (apply). A dry
// run stops before acting: it changes nothing and returns what the delete
// would.
func (s *Storage) Delete(ctx context.Context, r *Resource, ns, name string, opts DeleteOptions) (runtime.Object, bool, error) {
	dry := len(opts.DryRun) > 0
	for attempt := 0; ; attempt++ {
		cur, kv, err := s.get(ctx, r, ns, name)
		if err != nil {
			return nil, false, err
		}
		d, err := decideDelete(r, cur, opts.DeleteOptions, s.now())
		if err != nil {
			return nil, false, err
		}
		if err := validate(ctx, opts.Admission, attributes(ctx, admission.Delete, r, "", nil, cur, dry)); err != nil {
			return nil, false, err
		}
		if dry {
			return d.result(cur), d.remove, nil
		}
		obj, gone, err := s.applyDeletion(ctx, r, ns, name, cur, kv, d)
		if errors.Is(err, spec.ErrConflict) && attempt < 16 {
			continue // the object changed since it was read: decide again
		}
		if err != nil {
			return nil, false, storeErr(r, name, err)
		}
		return obj, gone, nil
	}
}

// deletion is what deleting one object does, decided from the stored
// object, the request's options and the clock before any effect.
type deletion struct {
	// remove: the object goes from the store now. Otherwise it stays,
	// marked with a deletionTimestamp, until its finalizers (gcFinalizer
	// included) are gone or its grace period ends.
	remove bool
	// marked is the object as marked; nil when removing, or when it is
	// marked so already (nothing to write).
	marked runtime.Object
	// gcFinalizer is the garbage collector's finalizer the delete adds
	// (orphan, foregroundDeletion); "" for none.
	gcFinalizer string
}

// result is the object a delete deciding d on cur answers with.
func (d deletion) result(cur runtime.Object) runtime.Object {
	if d.marked != nil {
		return d.marked
	}
	return cur
}

// decideDelete decides the delete of cur (an object of r) with opts at
// time now. It reads nothing but its arguments and changes none of them.
// A failed precondition is 409, an unknown propagationPolicy 422.
func decideDelete(r *Resource, cur runtime.Object, opts metav1.DeleteOptions, now metav1.Time) (deletion, error) {
	if err := checkPreconditions(r, cur, opts.Preconditions); err != nil {
		return deletion{}, err
	}
	cm := objectMeta(cur)
	// Orphan and Foreground mark the owner, as upstream, with a
	// deletionTimestamp and the garbage collector's finalizer; the
	// collector does its work and removes it.
	gcFinalizer := ""
	if opts.PropagationPolicy != nil && cm.GetDeletionTimestamp() == nil {
		switch *opts.PropagationPolicy {
		case metav1.DeletePropagationOrphan:
			gcFinalizer = metav1.FinalizerOrphanDependents
		case metav1.DeletePropagationForeground:
			gcFinalizer = metav1.FinalizerDeleteDependents
		case metav1.DeletePropagationBackground:
		default:
			return deletion{}, invalidDeleteOptions(field.NotSupported(field.NewPath("propagationPolicy"), *opts.PropagationPolicy, []string{"Foreground", "Background", "Orphan", "nil"}))
		}
	}
	d := deletion{gcFinalizer: gcFinalizer}
	grace := max(gracePeriod(r, cur, opts.GracePeriodSeconds), 0)
	if !finalizersPending(cur) && grace == 0 && gcFinalizer == "" {
		d.remove = true
		return d, nil
	}
	if marked := markDeleted(r, cur, grace, gcFinalizer, now); !semanticEqual(marked, cur) {
		d.marked = marked
	}
	return d, nil
}

// checkPreconditions is 409 Conflict when p names another uid or
// resourceVersion than cur's.
func checkPreconditions(r *Resource, cur runtime.Object, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	cm := objectMeta(cur)
	if p.UID != nil && *p.UID != cm.GetUID() {
		return apierrors.NewConflict(r.GroupResource(), cm.GetName(),
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, cm.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != cm.GetResourceVersion() {
		return apierrors.NewConflict(r.GroupResource(), cm.GetName(),
			fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, cm.GetResourceVersion()))
	}
	return nil
}

// markDeleted returns a copy of cur marked for deletion at now with grace
// seconds to go: a deletionTimestamp (an earlier one is kept unless the new
// grace period ends sooner), the grace period, a new generation, and
// gcFinalizer when not "". A namespace's status.phase becomes Terminating.
func markDeleted(r *Resource, cur runtime.Object, grace int64, gcFinalizer string, now metav1.Time) runtime.Object {
	obj := cur.DeepCopyObject()
	m := objectMeta(obj)
	if m.GetDeletionTimestamp() == nil || grace < deref(m.GetDeletionGracePeriodSeconds()) {
		ts := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
		if m.GetDeletionTimestamp() == nil || ts.Before(m.GetDeletionTimestamp()) {
			m.SetDeletionTimestamp(&ts)
		}
		m.SetDeletionGracePeriodSeconds(&grace)
		if !r.NoGeneration {
			m.SetGeneration(m.GetGeneration() + 1)
		}
	}
	if gcFinalizer != "" && !slices.Contains(m.GetFinalizers(), gcFinalizer) {
		m.SetFinalizers(append(m.GetFinalizers(), gcFinalizer))
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		ns.Status.Phase = corev1.NamespaceTerminating
	}
	return obj
}

// finalizersPending: obj has finalizers that hold its deletion —
// metadata.finalizers, and for a namespace spec.finalizers too.
func finalizersPending(obj runtime.Object) bool {
	if len(objectMeta(obj).GetFinalizers()) > 0 {
		return true
	}
	ns, ok := obj.(*corev1.Namespace)
	return ok && len(ns.Spec.Finalizers) > 0
}

// applyDeletion carries out d, decided on cur (read at kv): it removes the
// object or writes its mark. An error
// wrapping spec.ErrConflict means the object changed since it was read;
// the caller decides again.
func (s *Storage) applyDeletion(ctx context.Context, r *Resource, ns, name string, cur runtime.Object, kv spec.KeyValue, d deletion) (runtime.Object, bool, error) {
	if d.remove {
		_, rev, err := s.Store.Delete(ctx, kv.Key, kv.ModRevision)
		if err != nil {
			return nil, false, err
		}
		if s.Hooks.AfterDelete != nil {
			s.Hooks.AfterDelete(r, cur)
		}
		objectMeta(cur).SetResourceVersion(strconv.FormatInt(rev, 10))
		return cur, true, nil
	}
	if d.marked == nil {
		return cur, false, nil
	}
	data, err := encode(r, d.marked)
	if err != nil {
		return nil, false, apierrors.NewInternalError(err)
	}
	rev, err := s.Store.Update(ctx, kv.Key, data, kv.ModRevision)
	if err != nil {
		return nil, false, err
	}
	objectMeta(d.marked).SetResourceVersion(strconv.FormatInt(rev, 10))
	return d.marked, false, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func invalidDeleteOptions(e *field.Error) error {
	return apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("DeleteOptions").GroupKind(), "", field.ErrorList{e})
}

// gracePeriod is the grace period of a delete: pods bound to a node and not
// finished get the requested or their spec's grace period; everything else
// is deleted at once.
func gracePeriod(r *Resource, obj runtime.Object, requested *int64) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok || r.Group != "" {
		return 0
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if requested != nil {
		return *requested
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}
