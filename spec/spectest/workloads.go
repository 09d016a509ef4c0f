package spectest

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Phase sets status.phase.
func (p *PodWrapper) Phase(ph corev1.PodPhase) *PodWrapper { p.Status.Phase = ph; return p }

// Ready sets the Ready condition True since the Unix second sec (and the
// phase Running when none is set), as a kubelet reports a ready pod.
func (p *PodWrapper) Ready(sec int64) *PodWrapper {
	if p.Status.Phase == "" {
		p.Status.Phase = corev1.PodRunning
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady,
		Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(time.Unix(sec, 0))})
	return p
}

// Restarts reports a container status for the first container with this
// restart count.
func (p *PodWrapper) Restarts(n int32) *PodWrapper {
	p.Status.ContainerStatuses = append(p.Status.ContainerStatuses,
		corev1.ContainerStatus{Name: p.Spec.Containers[0].Name, RestartCount: n})
	return p
}

// ControlledBy adds an ownerReference with controller=true to owner
// (kind k, apiVersion av).
func (p *PodWrapper) ControlledBy(av, k string, owner metav1.Object) *PodWrapper {
	t := true
	p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{APIVersion: av, Kind: k,
		Name: owner.GetName(), UID: owner.GetUID(), Controller: &t, BlockOwnerDeletion: &t})
	return p
}

// Deleting sets a deletion timestamp (the pod is terminating).
func (p *PodWrapper) Deleting() *PodWrapper {
	now := metav1.NewTime(time.Unix(1, 0))
	p.DeletionTimestamp = &now
	return p
}

// ReplicaSetWrapper builds an apps/v1 ReplicaSet.
type ReplicaSetWrapper struct{ appsv1.ReplicaSet }

// MakeReplicaSet returns a ReplicaSet "rs" in namespace "default" (UID
// "uid-rs") of one replica selecting and labelling its pods app=NAME, with
// one container "c" of image "img".
func MakeReplicaSet() *ReplicaSetWrapper {
	one := int32(1)
	rs := &ReplicaSetWrapper{appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: metav1.NamespaceDefault, UID: "uid-rs"}}}
	rs.Spec.Replicas = &one
	rs.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "img"}}
	return rs.Selector("app", "rs")
}

// Name sets the name and the UID "uid-NAME".
func (r *ReplicaSetWrapper) Name(n string) *ReplicaSetWrapper {
	r.ReplicaSet.Name, r.UID = n, types.UID("uid-"+n)
	return r
}

// Replicas sets spec.replicas.
func (r *ReplicaSetWrapper) Replicas(n int32) *ReplicaSetWrapper { r.Spec.Replicas = &n; return r }

// Selector sets the selector to k=v and the template's labels to it.
func (r *ReplicaSetWrapper) Selector(k, v string) *ReplicaSetWrapper {
	r.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	r.Spec.Template.Labels = map[string]string{k: v}
	return r
}

// TemplateLabel adds a label to the pod template only.
func (r *ReplicaSetWrapper) TemplateLabel(k, v string) *ReplicaSetWrapper {
	r.Spec.Template.Labels[k] = v
	return r
}

// MinReadySeconds sets spec.minReadySeconds.
func (r *ReplicaSetWrapper) MinReadySeconds(s int32) *ReplicaSetWrapper {
	r.Spec.MinReadySeconds = s
	return r
}

// Generation sets metadata.generation.
func (r *ReplicaSetWrapper) Generation(g int64) *ReplicaSetWrapper {
	r.ReplicaSet.Generation = g
	return r
}

// Status sets status.replicas and status.availableReplicas.
func (r *ReplicaSetWrapper) Status(replicas, available int32) *ReplicaSetWrapper {
	r.ReplicaSet.Status.Replicas, r.ReplicaSet.Status.AvailableReplicas = replicas, available
	r.ReplicaSet.Status.ReadyReplicas = available
	return r
}

// Annotation sets an annotation.
func (r *ReplicaSetWrapper) Annotation(k, v string) *ReplicaSetWrapper {
	if r.Annotations == nil {
		r.Annotations = map[string]string{}
	}
	r.Annotations[k] = v
	return r
}

// Created sets the creation timestamp to the Unix second sec.
func (r *ReplicaSetWrapper) Created(sec int64) *ReplicaSetWrapper {
	r.CreationTimestamp = metav1.NewTime(time.Unix(sec, 0))
	return r
}

// Obj returns a deep copy of the ReplicaSet.
func (r *ReplicaSetWrapper) Obj() *appsv1.ReplicaSet { return r.ReplicaSet.DeepCopy() }

// DeploymentWrapper builds an apps/v1 Deployment.
type DeploymentWrapper struct{ appsv1.Deployment }

// MakeDeployment returns a Deployment "web" in namespace "default" (UID
// "uid-web", generation 1) of three replicas selecting app=web, one
// container "c" of image "img", and the API server's defaults: strategy
// RollingUpdate with maxSurge and maxUnavailable 25%, revisionHistoryLimit
// 10, progressDeadlineSeconds 600.
func MakeDeployment() *DeploymentWrapper {
	three, ten, six := int32(3), int32(10), int32(600)
	q := intstr.FromString("25%")
	d := &DeploymentWrapper{appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: metav1.NamespaceDefault, UID: "uid-web", Generation: 1}}}
	d.Spec.Replicas = &three
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	d.Spec.Template.Labels = map[string]string{"app": "web"}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "img"}}
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &q, MaxUnavailable: &q}}
	d.Spec.RevisionHistoryLimit = &ten
	d.Spec.ProgressDeadlineSeconds = &six
	return d
}

// Replicas sets spec.replicas.
func (d *DeploymentWrapper) Replicas(n int32) *DeploymentWrapper { d.Spec.Replicas = &n; return d }

// Image sets the first container's image.
func (d *DeploymentWrapper) Image(img string) *DeploymentWrapper {
	d.Spec.Template.Spec.Containers[0].Image = img
	return d
}

// Surge sets the RollingUpdate strategy's maxSurge and maxUnavailable.
func (d *DeploymentWrapper) Surge(maxSurge, maxUnavailable intstr.IntOrString) *DeploymentWrapper {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable}}
	return d
}

// Recreate sets the Recreate strategy.
func (d *DeploymentWrapper) Recreate() *DeploymentWrapper {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return d
}

// Paused sets spec.paused.
func (d *DeploymentWrapper) Paused(p bool) *DeploymentWrapper { d.Spec.Paused = p; return d }

// HistoryLimit sets spec.revisionHistoryLimit.
func (d *DeploymentWrapper) HistoryLimit(n int32) *DeploymentWrapper {
	d.Spec.RevisionHistoryLimit = &n
	return d
}

// Generation sets metadata.generation.
func (d *DeploymentWrapper) Generation(g int64) *DeploymentWrapper {
	d.Deployment.Generation = g
	return d
}

// Obj returns a deep copy of the Deployment.
func (d *DeploymentWrapper) Obj() *appsv1.Deployment { return d.Deployment.DeepCopy() }
