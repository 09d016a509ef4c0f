// Package replicaset is the "replicaset" controller: it keeps
// spec.replicas active pods matching each ReplicaSet's selector, owned
// through a controllerRef, and reports them in status.
//
// The decisions are pure and table-tested: Manage (how many pods to create,
// which to delete), the deletion ranking (Ranked, upstream's
// ActivePodsWithRanks order), CalculateStatus, SlowStartBatch and the
// pod a template makes (PodFromTemplate). Controller is the client-go edge:
// informers on ReplicaSets and Pods, a rate-limited workqueue, expectations
// so that a slow informer never makes it create or delete twice, adoption
// and release of pods through controller.Decide.
package replicaset

import (
	"maps"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	// Name is the controller's name in --controllers.
	Name = "replicaset"
	// BurstReplicas caps the pods one sync creates or deletes (upstream's
	// burstReplicas).
	BurstReplicas = 500
	// SlowStartInitialBatchSize is the first creation batch (upstream's).
	SlowStartInitialBatchSize = 1
	// Workers is the number of ReplicaSets synced at once (upstream's
	// --concurrent-replicaset-syncs default).
	Workers = 5
)

// GVK is the ReplicaSet's group, version and kind (its pods'
// controllerRef).
var GVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}

// Plan is what one sync of a ReplicaSet does to its pods.
type Plan struct {
	// Create is how many pods to create (0 when deleting).
	Create int
	// Delete are the pods to delete, most deletable first.
	Delete []*corev1.Pod
}

// Manage decides from the ReplicaSet's active pods (active: see
// controller.IsPodActive) how to reach spec.replicas: create the missing
// ones or delete the surplus, at most BurstReplicas per sync. The surplus
// is chosen by Ranked with related (every active pod of the ReplicaSet's
// owner, its own included; nil when it has no owner). Manage decides only
// when the controller's expectations are satisfied: the caller checks.
func Manage(rs *appsv1.ReplicaSet, active, related []*corev1.Pod, now metav1.Time) Plan {
	want := int(replicas(rs))
	diff := len(active) - want
	switch {
	case diff < 0:
		return Plan{Create: min(-diff, BurstReplicas)}
	case diff > 0:
		n := min(diff, BurstReplicas)
		return Plan{Delete: Ranked(active, related, now)[:n]}
	}
	return Plan{}
}

// replicas is spec.replicas (1 when unset, the API default).
func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// PodFromTemplate is the pod rs creates: the template's labels,
// annotations, finalizers and spec, generateName "<rs>-", in rs's
// namespace, controlled by rs.
func PodFromTemplate(rs *appsv1.ReplicaSet) *corev1.Pod { return podFromTemplate(rs, GVK) }

// podFromTemplate is PodFromTemplate with the owner's kind (ReplicaSet or
// ReplicationController).
func podFromTemplate(rs *appsv1.ReplicaSet, gvk schema.GroupVersionKind) *corev1.Pod {
	t := rs.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{controllerRef(rs, gvk)},
		},
		Spec: t.Spec,
	}
}

func controllerRef(rs *appsv1.ReplicaSet, gvk schema.GroupVersionKind) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: rs.Name, UID: rs.UID,
		Controller: &t, BlockOwnerDeletion: &t}
}

// SlowStartBatch calls fn count times in batches of initial, 2·initial,
// 4·initial… calls (each batch concurrently), and stops after the first
// batch in which a call failed: a pod creation that fails (quota,
// admission) is then tried once, not count times. It returns how many
// calls succeeded and one error of the failed batch.
func SlowStartBatch(count, initial int, fn func() error) (int, error) {
	successes := 0
	for batch := min(count, initial); batch > 0; batch = min(2*batch, count) {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			fails int
		)
		for range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					mu.Lock()
					fails++
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		successes += batch - fails
		if first != nil {
			return successes, first
		}
		count -= batch
	}
	return successes, nil
}

// selectorOf parses rs's selector.
func selectorOf(rs *appsv1.ReplicaSet) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(rs.Spec.Selector)
}
