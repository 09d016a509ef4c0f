package deployment

import (
	"math"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
)

// active returns the ReplicaSets with spec.replicas > 0.
func active(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rsReplicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// scalingEvent is upstream's isScalingEvent: an active ReplicaSet was
// last scaled for another spec.replicas than the Deployment's now.
func (w *work) scalingEvent() bool {
	for _, rs := range active(w.all()) {
		v, ok := rs.Annotations[DesiredReplicasAnnotation]
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && int32(n) != replicasOf(w.d) {
			return true
		}
	}
	return false
}

// proportionalScale is upstream's scale(): the only active ReplicaSet
// (or, with none, the new or else the newest one) takes spec.replicas; a
// saturated new ReplicaSet scales the old ones to zero; otherwise, in a
// RollingUpdate, every active ReplicaSet grows or shrinks in proportion to
// its size, so that a Deployment scaled mid-rollout keeps its ratio of old
// to new pods, the leftover going to the largest one.
func (w *work) proportionalScale() {
	want := replicasOf(w.d)
	act := active(w.all())
	switch {
	case len(act) == 1:
		w.scale(act[0], want)
		return
	case len(act) == 0:
		if w.newRS != nil {
			w.scale(w.newRS, want)
		} else if len(w.old) > 0 {
			w.scale(w.old[len(w.old)-1], want)
		}
		return
	}
	if w.newRS != nil && w.newRS.Annotations[DesiredReplicasAnnotation] == strconv.Itoa(int(want)) &&
		rsReplicas(w.newRS) == want && w.newRS.Status.AvailableReplicas == want {
		for _, rs := range active(w.old) {
			w.scale(rs, 0)
		}
		return
	}
	if w.d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return
	}
	surge, _, err := ResolveFenceposts(w.d)
	if err != nil {
		return
	}
	allowed := int32(0)
	if want > 0 {
		allowed = want + surge
	}
	total := int32(0)
	for _, rs := range act {
		total += rsReplicas(rs)
	}
	toAdd := allowed - total
	if toAdd == 0 {
		return
	}
	// Growing: largest first, newer first on ties; shrinking: largest
	// first, older first on ties.
	sort.SliceStable(act, func(i, j int) bool {
		a, b := act[i], act[j]
		if rsReplicas(a) != rsReplicas(b) {
			return rsReplicas(a) > rsReplicas(b)
		}
		if toAdd > 0 {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
	added := int32(0)
	size := make([]int32, len(act))
	for i, rs := range act {
		p := w.proportion(rs, surge, toAdd, added)
		size[i] = rsReplicas(rs) + p
		added += p
	}
	size[0] = max(0, size[0]+toAdd-added)
	for i, rs := range act {
		w.scale(rs, size[i])
	}
}

// proportion is upstream's GetProportion: rs's share of toAdd, bounded by
// what is left to add.
func (w *work) proportion(rs *appsv1.ReplicaSet, surge, toAdd, added int32) int32 {
	if rsReplicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	f := w.fraction(rs, surge)
	left := toAdd - added
	if toAdd > 0 {
		return min(f, left)
	}
	return max(f, left)
}

// fraction is upstream's getReplicaSetFraction: how rs grows or shrinks
// when the Deployment's replicas+maxSurge changes from what rs's
// max-replicas annotation recorded (status.replicas without one).
func (w *work) fraction(rs *appsv1.ReplicaSet, surge int32) int32 {
	want := replicasOf(w.d)
	if want == 0 {
		return -rsReplicas(rs)
	}
	annotated := w.d.Status.Replicas
	if v, err := strconv.ParseInt(rs.Annotations[MaxReplicasAnnotation], 10, 32); err == nil {
		annotated = int32(v)
	}
	if annotated == 0 {
		return 0
	}
	newSize := float64(rsReplicas(rs)*(want+surge)) / float64(annotated)
	return int32(math.Round(newSize)) - rsReplicas(rs)
}
