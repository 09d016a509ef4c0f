// Package deployment is the "deployment" controller: it rolls a
// Deployment's pod template out through ReplicaSets named
// "<deployment>-<pod-template-hash>", with the RollingUpdate (maxSurge,
// maxUnavailable) or Recreate strategy, revision annotations
// (deployment.kubernetes.io/revision) so that `kubectl rollout
// history|undo` work, revisionHistoryLimit cleanup, pause, and the status
// and Progressing/Available conditions that `kubectl rollout status`
// reads, with upstream's reasons.
//
// Reconcile is the pure decision: given the Deployment, the ReplicaSets it
// owns and whether old pods still run, it returns one step (a ReplicaSet to
// create, ReplicaSets to rescale, old ones to delete, the status to write).
// Controller is the client-go edge; it writes ReplicaSets with the
// resourceVersion it read, so a decision taken on a stale cache fails with
// a conflict and is retried instead of being applied.
package deployment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

const (
	// Name is the controller's name in --controllers.
	Name = "deployment"
	// Workers is the number of Deployments synced at once (upstream's
	// --concurrent-deployment-syncs default).
	Workers = 5
	// RevisionAnnotation is the revision of a ReplicaSet and of its
	// Deployment (the newest ReplicaSet's).
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// DesiredReplicasAnnotation is the Deployment's spec.replicas when the
	// ReplicaSet was last scaled.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// MaxReplicasAnnotation is spec.replicas + maxSurge at that time.
	MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
	// HashLabel is the pod-template-hash label on ReplicaSets, their
	// selectors and their pods.
	HashLabel = appsv1.DefaultDeploymentUniqueLabelKey
)

// Condition reasons, as upstream's deployment util.
const (
	ReasonNewRSCreated       = "NewReplicaSetCreated"
	ReasonFoundNewRS         = "FoundNewReplicaSet"
	ReasonRSUpdated          = "ReplicaSetUpdated"
	ReasonNewRSAvailable     = "NewReplicaSetAvailable"
	ReasonTimedOut           = "ProgressDeadlineExceeded"
	ReasonPaused             = "DeploymentPaused"
	ReasonResumed            = "DeploymentResumed"
	ReasonMinimumAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumUnavailable = "MinimumReplicasUnavailable"
	ReasonFailedRSCreate     = "ReplicaSetCreateError"
)

// GVK is the Deployment's group, version and kind (its ReplicaSets'
// controllerRef).
var GVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

// TemplateHash is the pod-template-hash of a template: an FNV-32a hash of
// its JSON (without the hash label) and, when set, the collision count,
// encoded with rand.SafeEncodeString as upstream. Upstream hashes a
// spew dump instead of JSON, so the values differ from kube-controller-
// manager's; both only need to be stable and differ between templates.
func TemplateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	c := t.DeepCopy()
	delete(c.Labels, HashLabel)
	data, _ := json.Marshal(c)
	h := fnv.New32a()
	_, _ = h.Write(data)
	if collisionCount != nil {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(*collisionCount))
		_, _ = h.Write(b[:])
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// EqualIgnoreHash reports whether two templates are equal apart from the
// pod-template-hash label (how the new ReplicaSet is found, also after
// `kubectl rollout undo` copied an old template back).
func EqualIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	delete(x.Labels, HashLabel)
	delete(y.Labels, HashLabel)
	if len(x.Labels) == 0 {
		x.Labels = nil
	}
	if len(y.Labels) == 0 {
		y.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(x, y)
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rsReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// Revision parses a ReplicaSet's revision annotation (0 when absent or
// malformed).
func Revision(o metav1.Object) int64 {
	v, err := strconv.ParseInt(o.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// ResolveFenceposts returns maxSurge (rounded up) and maxUnavailable
// (rounded down) as pod counts for d's RollingUpdate strategy; when both
// are 0, maxUnavailable is 1, as upstream, so a rollout can progress.
func ResolveFenceposts(d *appsv1.Deployment) (surge, unavailable int32, err error) {
	ru := d.Spec.Strategy.RollingUpdate
	def := intstr.FromString("25%")
	ms, mu := &def, &def
	if ru != nil {
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
	}
	n := int(replicasOf(d))
	s, err := intstr.GetScaledValueFromIntOrPercent(ms, n, true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(mu, n, false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

// maxUnavailable is the unavailability the Available condition tolerates:
// the resolved maxUnavailable capped at replicas for RollingUpdate, 0
// otherwise.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType || replicasOf(d) == 0 {
		return 0
	}
	_, u, err := ResolveFenceposts(d)
	if err != nil {
		return 0
	}
	return min(u, replicasOf(d))
}

// newReplicaSet builds the ReplicaSet that runs d's current template.
func newReplicaSet(d *appsv1.Deployment, replicas int32, revision int64) *appsv1.ReplicaSet {
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels = maps.Clone(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[HashLabel] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[HashLabel] = hash
	t := true
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: maps.Clone(tmpl.Labels),
			Annotations: copyAnnotations(d.Annotations),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: GVK.GroupVersion().String(), Kind: GVK.Kind,
				Name: d.Name, UID: d.UID, Controller: &t, BlockOwnerDeletion: &t}},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	setReplicasAnnotations(rs, d)
	rs.Annotations[RevisionAnnotation] = strconv.FormatInt(revision, 10)
	return rs
}

// copyAnnotations copies a Deployment's annotations onto its ReplicaSets,
// except those that describe the Deployment itself (upstream's
// skipCopyAnnotation).
func copyAnnotations(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		switch k {
		case RevisionAnnotation, DesiredReplicasAnnotation, MaxReplicasAnnotation, corev1.LastAppliedConfigAnnotation:
			continue
		}
		out[k] = v
	}
	return out
}

// setReplicasAnnotations sets the desired- and max-replicas annotations;
// it reports whether they changed.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, d *appsv1.Deployment) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	surge := int32(0)
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		surge, _, _ = ResolveFenceposts(d)
	}
	desired := strconv.Itoa(int(replicasOf(d)))
	maxR := strconv.Itoa(int(replicasOf(d) + surge))
	changed := rs.Annotations[DesiredReplicasAnnotation] != desired || rs.Annotations[MaxReplicasAnnotation] != maxR
	rs.Annotations[DesiredReplicasAnnotation], rs.Annotations[MaxReplicasAnnotation] = desired, maxR
	return changed
}

// byCreation sorts ReplicaSets oldest first (name breaks ties).
func byCreation(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		a, b := rss[i], rss[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}
