package pluginhelper

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// AffinityTerm is a parsed corev1.PodAffinityTerm (of a pod's affinity or
// anti-affinity, required or preferred): which pods it selects, by
// namespace and labels, and over which topology key. InterPodAffinity
// pre-computes its state from these; a plugin of your own with pod-affinity
// semantics parses terms the same way with ParseAffinityTerm.
type AffinityTerm struct {
	// TopologyKey is the node label whose values are the domains.
	TopologyKey string
	// Selector selects pods by label (matchLabelKeys and mismatchLabelKeys
	// already merged in).
	Selector labels.Selector
	// Namespaces are the namespaces named by the term (the pod's own when
	// it names none and has no namespace selector).
	Namespaces map[string]bool
	// NamespaceSelector, when not nil, also selects namespaces by label
	// (empty: every namespace).
	NamespaceSelector labels.Selector
	// Weight is the preferred term's weight (0 for a required term).
	Weight int64
}

// ParseAffinityTerm parses one of pod's affinity terms, with weight for a
// preferred term. matchLabelKeys and mismatchLabelKeys are merged into the
// label selector (key in / notin the pod's value), as the kube-apiserver
// does when it admits the pod; doing it again is harmless and covers API
// servers that do not. An invalid selector is an error.
func ParseAffinityTerm(pod *corev1.Pod, t *corev1.PodAffinityTerm, weight int32) (AffinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil {
		return AffinityTerm{}, err
	}
	if t.LabelSelector != nil {
		for _, keys := range []struct {
			keys []string
			op   selection.Operator
		}{{t.MatchLabelKeys, selection.In}, {t.MismatchLabelKeys, selection.NotIn}} {
			for _, k := range keys.keys {
				v, ok := pod.Labels[k]
				if !ok {
					continue
				}
				r, err := labels.NewRequirement(k, keys.op, []string{v})
				if err != nil {
					return AffinityTerm{}, err
				}
				sel = sel.Add(*r)
			}
		}
	}
	out := AffinityTerm{TopologyKey: t.TopologyKey, Selector: sel, Namespaces: map[string]bool{}, Weight: int64(weight)}
	for _, n := range t.Namespaces {
		out.Namespaces[n] = true
	}
	if t.NamespaceSelector != nil {
		if out.NamespaceSelector, err = metav1.LabelSelectorAsSelector(t.NamespaceSelector); err != nil {
			return AffinityTerm{}, err
		}
	} else if len(t.Namespaces) == 0 {
		out.Namespaces[pod.Namespace] = true
	}
	return out, nil
}

// Matches reports whether the term selects pod p: p's namespace is one of
// Namespaces or matches NamespaceSelector (nsLabels returns a namespace's
// labels, false when unknown; a non-empty namespace selector then matches
// nothing), and Selector matches p's labels.
func (t *AffinityTerm) Matches(p *corev1.Pod, nsLabels func(ns string) (labels.Set, bool)) bool {
	if !t.Namespaces[p.Namespace] {
		if t.NamespaceSelector == nil {
			return false
		}
		if !t.NamespaceSelector.Empty() {
			l, ok := nsLabels(p.Namespace)
			if !ok || !t.NamespaceSelector.Matches(l) {
				return false
			}
		}
	}
	return t.Selector.Matches(labels.Set(p.Labels))
}
