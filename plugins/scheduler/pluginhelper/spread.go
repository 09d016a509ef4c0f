package pluginhelper

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// CountMatching counts the pods of pods (typically a spec.NodeInfo's) in
// namespace ns whose labels sel matches, leaving out pods being deleted.
// An empty selector matches nothing here, as in upstream's topology spread
// (a constraint without a selector counts no pods).
func CountMatching(pods []*corev1.Pod, sel labels.Selector, ns string) int32 {
	if sel.Empty() {
		return 0
	}
	var n int32
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Namespace != ns {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			n++
		}
	}
	return n
}
