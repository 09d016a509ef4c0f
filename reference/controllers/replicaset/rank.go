package replicaset

import (
	"math"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// PodDeletionCostAnnotation lets users order deletions: lower costs go
// first (upstream's controller.kubernetes.io/pod-deletion-cost, an int32;
// a missing or malformed value is 0).
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// Ranked returns pods sorted most deletable first, in upstream's order
// (ActivePodsWithRanks with LogarithmicScaleDown and PodDeletionCost on,
// their defaults):
//
//  1. unassigned < assigned (spec.nodeName);
//  2. Pending < Unknown < Running;
//  3. not ready < ready;
//  4. lower pod-deletion-cost < higher;
//  5. more related pods on the same node < fewer (the rank: how many of
//     related run on the pod's node, so doubled-up pods go first);
//  6. for two ready pods, ready more recently < longer ago, compared on a
//     log2 scale of the time since (equal buckets: lower UID first);
//  7. more container restarts < fewer;
//  8. created more recently < longer ago, on the same log2 scale (equal
//     buckets: lower UID first).
//
// pods is not changed; now is the reference time of the log scale.
func Ranked(pods, related []*corev1.Pod, now metav1.Time) []*corev1.Pod {
	onNode := map[string]int{}
	for _, p := range related {
		if controller.IsPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	s := ranked{pods: append([]*corev1.Pod(nil), pods...), rank: make([]int, len(pods)), now: now}
	for i, p := range s.pods {
		s.rank[i] = onNode[p.Spec.NodeName]
	}
	sort.Sort(s)
	return s.pods
}

type ranked struct {
	pods []*corev1.Pod
	rank []int
	now  metav1.Time
}

func (s ranked) Len() int { return len(s.pods) }

func (s ranked) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

var phaseOrder = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

func (s ranked) Less(i, j int) bool {
	a, b := s.pods[i], s.pods[j]
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if phaseOrder[a.Status.Phase] != phaseOrder[b.Status.Phase] {
		return phaseOrder[a.Status.Phase] < phaseOrder[b.Status.Phase]
	}
	ra, rb := controller.IsPodReady(a), controller.IsPodReady(b)
	if ra != rb {
		return !ra
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return ca < cb
	}
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	if ra && rb {
		ta, tb := readyTime(a), readyTime(b)
		if !ta.Equal(&tb) {
			if ta.IsZero() || tb.IsZero() || s.now.IsZero() {
				return afterOrZero(ta, tb)
			}
			if d := logRankDiff(ta, tb, s.now); d != 0 {
				return d < 0
			}
			return a.UID < b.UID
		}
	}
	if xa, xb := maxRestarts(a), maxRestarts(b); xa != xb {
		return xa > xb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		if a.CreationTimestamp.IsZero() || b.CreationTimestamp.IsZero() || s.now.IsZero() {
			return afterOrZero(a.CreationTimestamp, b.CreationTimestamp)
		}
		if d := logRankDiff(a.CreationTimestamp, b.CreationTimestamp, s.now); d != 0 {
			return d < 0
		}
		return a.UID < b.UID
	}
	return false
}

// deletionCost parses the pod-deletion-cost annotation (0 when absent or
// malformed).
func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[PodDeletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// readyTime is the Ready condition's last transition (zero when unknown).
func readyTime(p *corev1.Pod) metav1.Time {
	if c := controller.PodReadyCondition(p); c != nil && c.Status == corev1.ConditionTrue {
		return c.LastTransitionTime
	}
	return metav1.Time{}
}

// afterOrZero orders a zero time first, then the later time first.
func afterOrZero(a, b metav1.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero()
	}
	return a.After(b.Time)
}

// logRankDiff compares floor(log2(now - t)) of a and b (nanoseconds; -1
// for a time not before now).
func logRankDiff(a, b, now metav1.Time) int64 {
	bucket := func(t metav1.Time) int64 {
		d := now.Sub(t.Time)
		if d <= 0 {
			return -1
		}
		return int64(math.Log2(float64(d)))
	}
	return bucket(a) - bucket(b)
}

// maxRestarts is the highest restart count among the pod's containers.
func maxRestarts(p *corev1.Pod) int32 {
	var m int32
	for _, c := range p.Status.ContainerStatuses {
		m = max(m, c.RestartCount)
	}
	return m
}
