package pluginhelper

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// MoreImportant reports whether pod a ranks before pod b as a preemption
// victim to keep: higher priority first (spec.priority, 0 when unset), then
// the one started earlier (PodStartTime). A preemption plugin sorts a
// node's potential victims with it and reprieves them in that order, as
// upstream's DefaultPreemption does.
func MoreImportant(a, b *corev1.Pod) bool {
	pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b)
	if pa != pb {
		return pa > pb
	}
	return PodStartTime(a).Before(PodStartTime(b))
}

// PodStartTime is when p started: status.startTime, or its creation time
// when the kubelet has not reported one yet.
func PodStartTime(p *corev1.Pod) time.Time {
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time
	}
	return p.CreationTimestamp.Time
}

// SplitByPDB splits pods, in their order, into those whose eviction would
// take a matching PodDisruptionBudget below zero disruptions allowed
// (violating) and the rest (fine), as upstream's preemption does: each pod
// a PDB selects (same namespace, non-empty selector, not already in the
// PDB's status.disruptedPods) uses one of its status.disruptionsAllowed.
// A PDB whose selector does not parse selects nothing. pods and pdbs are
// not modified; the returned slices are new.
func SplitByPDB(pods []*corev1.Pod, pdbs []*policyv1.PodDisruptionBudget) (violating, fine []*corev1.Pod) {
	allowed := make([]int32, len(pdbs))
	sels := make([]labels.Selector, len(pdbs))
	for i, pdb := range pdbs {
		allowed[i] = pdb.Status.DisruptionsAllowed
		if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil {
			sels[i] = s
		}
	}
	for _, p := range pods {
		violates := false
		for i, pdb := range pdbs {
			if pdb.Namespace != p.Namespace || sels[i] == nil || sels[i].Empty() || !sels[i].Matches(labels.Set(p.Labels)) {
				continue
			}
			if _, disrupted := pdb.Status.DisruptedPods[p.Name]; disrupted {
				continue
			}
			allowed[i]--
			if allowed[i] < 0 {
				violates = true
			}
		}
		if violates {
			violating = append(violating, p)
		} else {
			fine = append(fine, p)
		}
	}
	return violating, fine
}
