package deployment

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Input is what one sync of a Deployment decides from.
type Input struct {
	// Deployment is the Deployment (not changed by Reconcile).
	Deployment *appsv1.Deployment
	// ReplicaSets are the ReplicaSets it controls (after adoption and
	// release; not changed by Reconcile).
	ReplicaSets []*appsv1.ReplicaSet
	// OldPodsRunning reports whether pods of ReplicaSets other than the
	// new one still exist and have not terminated (Recreate waits for
	// them).
	OldPodsRunning bool
	// Now is the time of the decision.
	Now metav1.Time
}

// Step is one sync's decision, applied by the caller in this order:
// create, update, delete, revision, status.
type Step struct {
	// Create is a new ReplicaSet to create (nil: none).
	Create *appsv1.ReplicaSet
	// Update are changed copies of existing ReplicaSets (replicas,
	// annotations, minReadySeconds) to write.
	Update []*appsv1.ReplicaSet
	// Delete are old ReplicaSets beyond revisionHistoryLimit.
	Delete []*appsv1.ReplicaSet
	// Revision is the Deployment's revision annotation after this step.
	Revision string
	// Status is the Deployment's status after this step.
	Status appsv1.DeploymentStatus
	// Requeue, when not 0, is when to look again: the progress deadline
	// of a rollout that has not completed yet.
	Requeue time.Duration
}

// work holds the ReplicaSets being decided on: copies, and which changed.
type work struct {
	d       *appsv1.Deployment
	newRS   *appsv1.ReplicaSet
	old     []*appsv1.ReplicaSet // oldest first
	changed map[string]bool
	step    Step
}

func (w *work) all() []*appsv1.ReplicaSet {
	out := append([]*appsv1.ReplicaSet(nil), w.old...)
	if w.newRS != nil {
		out = append(out, w.newRS)
	}
	return out
}

func (w *work) scale(rs *appsv1.ReplicaSet, n int32) {
	if rsReplicas(rs) == n && !setReplicasAnnotations(rs, w.d) {
		return
	}
	rs.Spec.Replicas = &n
	setReplicasAnnotations(rs, w.d)
	w.changed[rs.Name] = true
}

// Reconcile decides one step of in's rollout, as upstream's
// syncDeployment: a paused Deployment is only scaled; Recreate scales
// every old ReplicaSet to 0, waits for their pods to end, then creates or
// scales the new one; RollingUpdate creates the new ReplicaSet, then
// alternately scales it up (within replicas+maxSurge) and old ones down
// (keeping replicas−maxUnavailable available). A complete rollout deletes
// old ReplicaSets beyond revisionHistoryLimit. An invalid strategy is an
// error (the Deployment is malformed; retrying does not help).
func Reconcile(in Input) (Step, error) {
	d := in.Deployment
	w := &work{d: d, changed: map[string]bool{}}
	maxOld := int64(0)
	for _, rs := range in.ReplicaSets {
		c := rs.DeepCopy()
		if w.newRS == nil && EqualIgnoreHash(&c.Spec.Template, &d.Spec.Template) {
			w.newRS = c
			continue
		}
		w.old = append(w.old, c)
	}
	byCreation(w.old)
	for _, rs := range w.old {
		maxOld = max(maxOld, Revision(rs))
	}
	newRevision := maxOld + 1
	w.step.Revision = d.Annotations[RevisionAnnotation]
	if w.newRS != nil {
		if Revision(w.newRS) < newRevision {
			w.newRS.Annotations = copyAnnotationsKeep(w.newRS.Annotations, d.Annotations)
			w.newRS.Annotations[RevisionAnnotation] = strconv.FormatInt(newRevision, 10)
			w.changed[w.newRS.Name] = true
		}
		if w.newRS.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			w.newRS.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			w.changed[w.newRS.Name] = true
		}
		w.step.Revision = w.newRS.Annotations[RevisionAnnotation]
	}
	var cond *appsv1.DeploymentCondition
	switch {
	case d.Spec.Paused || w.scalingEvent():
		// upstream's sync(): scale, no rollout.
		w.proportionalScale()
		if d.Spec.Paused {
			w.cleanup()
		}
	case d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType:
		cond = w.recreate(in.OldPodsRunning, newRevision)
	default:
		var err error
		if cond, err = w.rolling(newRevision); err != nil {
			return Step{}, err
		}
	}
	for _, rs := range w.all() {
		if w.changed[rs.Name] {
			w.step.Update = append(w.step.Update, rs)
		}
	}
	all := w.all()
	if w.step.Create != nil {
		all = append(all, w.step.Create)
	}
	w.step.Status, w.step.Requeue = rolloutStatus(d, all, w.step.Create, w.newRS, cond, in.Now)
	return w.step, nil
}

// copyAnnotationsKeep adds the Deployment's copyable annotations to a
// ReplicaSet's (keeping the ReplicaSet's own revision and replicas ones).
func copyAnnotationsKeep(rsAnn, dAnn map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range rsAnn {
		out[k] = v
	}
	for k, v := range copyAnnotations(dAnn) {
		out[k] = v
	}
	return out
}

// createNew records the creation of the new ReplicaSet with replicas and
// returns the Progressing condition upstream sets then.
func (w *work) createNew(replicas int32, revision int64) *appsv1.DeploymentCondition {
	rs := newReplicaSet(w.d, replicas, revision)
	w.step.Create = rs
	w.step.Revision = rs.Annotations[RevisionAnnotation]
	return &appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: "True", Reason: ReasonNewRSCreated,
		Message: fmt.Sprintf("Created new replica set %q", rs.Name)}
}

func (w *work) recreate(oldPodsRunning bool, revision int64) *appsv1.DeploymentCondition {
	scaledDown := false
	oldStill := false
	for _, rs := range w.old {
		if rsReplicas(rs) != 0 {
			w.scale(rs, 0)
			scaledDown = true
		}
		if rs.Status.Replicas > 0 {
			oldStill = true
		}
	}
	if scaledDown || oldStill || oldPodsRunning {
		return nil
	}
	if w.newRS == nil {
		return w.createNew(replicasOf(w.d), revision)
	}
	w.scale(w.newRS, replicasOf(w.d))
	w.cleanup()
	return nil
}

func (w *work) rolling(revision int64) (*appsv1.DeploymentCondition, error) {
	surge, unavailable, err := ResolveFenceposts(w.d)
	if err != nil {
		return nil, err
	}
	want := replicasOf(w.d)
	if w.newRS == nil {
		return w.createNew(NewRSReplicas(want, surge, w.old, nil), revision), nil
	}
	if n := NewRSReplicas(want, surge, w.old, w.newRS); n != rsReplicas(w.newRS) {
		w.scale(w.newRS, n)
		return nil, nil
	}
	for rs, n := range ScaleDownOld(want, unavailable, w.old, w.newRS) {
		w.scale(rs, n)
	}
	if complete(w.d, w.d.Status) {
		w.cleanup()
	}
	return nil, nil
}

// podCount is the pods a ReplicaSet may have: its spec.replicas, or its
// status.replicas while pods it was scaled down from still exist. Upstream
// counts spec.replicas only; counting the larger keeps the rollout under
// replicas+maxSurge while an old ReplicaSet's deletions are in flight.
func podCount(rs *appsv1.ReplicaSet) int32 { return max(rsReplicas(rs), rs.Status.Replicas) }

// NewRSReplicas is the new ReplicaSet's replicas in a RollingUpdate
// (upstream's NewRSNewReplicas): grow towards replicas as far as the pods of
// all ReplicaSets stay within replicas+maxSurge.
func NewRSReplicas(replicas, maxSurge int32, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	cur, current := int32(0), int32(0)
	if newRS != nil {
		cur = rsReplicas(newRS)
		current = podCount(newRS)
	}
	for _, rs := range old {
		current += podCount(rs)
	}
	maxTotal := replicas + maxSurge
	if current >= maxTotal {
		return cur
	}
	return cur + max(0, min(maxTotal-current, replicas-cur))
}

// ScaleDownOld returns the old ReplicaSets to scale down in a
// RollingUpdate and their new replicas (upstream's reconcileOldReplicaSets):
// first old ReplicaSets' unavailable pods, then available ones oldest
// ReplicaSet first, never taking the available pods of all ReplicaSets
// below replicas−maxUnavailable. old is sorted oldest first.
func ScaleDownOld(replicas, maxUnavailable int32, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) map[*appsv1.ReplicaSet]int32 {
	out := map[*appsv1.ReplicaSet]int32{}
	all := int32(0)
	oldPods := int32(0)
	for _, rs := range old {
		all += rsReplicas(rs)
		oldPods += rsReplicas(rs)
	}
	if oldPods == 0 {
		return out
	}
	all += rsReplicas(newRS)
	minAvailable := replicas - maxUnavailable
	newUnavailable := rsReplicas(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := all - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return out
	}
	target := map[*appsv1.ReplicaSet]int32{}
	for _, rs := range old {
		target[rs] = rsReplicas(rs)
	}
	// Unhealthy first: replicas that are not available cost nothing.
	cleaned := int32(0)
	for _, rs := range old {
		if cleaned >= maxScaledDown {
			break
		}
		if target[rs] == 0 || target[rs] <= rs.Status.AvailableReplicas {
			continue
		}
		n := min(maxScaledDown-cleaned, target[rs]-rs.Status.AvailableReplicas)
		target[rs] -= n
		cleaned += n
	}
	// Then available pods, keeping minAvailable. An old ReplicaSet never
	// has more available pods than its spec.replicas once its controller
	// caught up, so a status that trails a scale-down is not trusted
	// beyond that (upstream trusts it, and can dip below minAvailable).
	available := newRS.Status.AvailableReplicas
	for _, rs := range old {
		available += min(rs.Status.AvailableReplicas, rsReplicas(rs))
	}
	if available > minAvailable {
		budget := available - minAvailable
		for _, rs := range old {
			if budget <= 0 {
				break
			}
			if target[rs] == 0 {
				continue
			}
			n := min(target[rs], budget)
			target[rs] -= n
			budget -= n
		}
	}
	for _, rs := range old {
		if target[rs] != rsReplicas(rs) {
			out[rs] = target[rs]
		}
	}
	return out
}

// cleanup deletes old ReplicaSets beyond revisionHistoryLimit, lowest
// revision first, only those scaled to and at zero and observed.
func (w *work) cleanup() {
	if w.d.Spec.RevisionHistoryLimit == nil {
		return
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range w.old {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	diff := len(alive) - int(*w.d.Spec.RevisionHistoryLimit)
	if diff <= 0 {
		return
	}
	sort.SliceStable(alive, func(i, j int) bool {
		if ri, rj := Revision(alive[i]), Revision(alive[j]); ri != rj {
			return ri < rj
		}
		return alive[i].CreationTimestamp.Before(&alive[j].CreationTimestamp)
	})
	for _, rs := range alive[:diff] {
		if rs.Status.Replicas != 0 || rsReplicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration || w.changed[rs.Name] {
			continue
		}
		w.step.Delete = append(w.step.Delete, rs)
	}
}
