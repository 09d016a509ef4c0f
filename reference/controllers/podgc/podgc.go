// Package podgc is the "podgc" controller (upstream's
// podgc): every GCPeriod it force-deletes
//
//   - terminated pods (Succeeded or Failed) beyond TerminatedThreshold
//     (upstream's --terminated-pod-gc-threshold, 12500), evicted or
//     disrupted ones first, then the oldest;
//   - pods bound to a node that no longer exists, once the node has been
//     missing for Quarantine (40 s) and a read from the API server
//     confirms it, marked Failed with the DisruptionTarget condition
//     (reason DeletionByPodGC) first;
//   - pods being deleted that were never scheduled (no kubelet will ever
//     finish their deletion).
//
// Plan is the decision; Controller is the client-go edge.
package podgc

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const (
	// Name is the controller's name in --controllers.
	Name = "podgc"
	// DefaultTerminatedThreshold is upstream's --terminated-pod-gc-threshold.
	DefaultTerminatedThreshold = 12500
	// DefaultGCPeriod is how often upstream's podgc runs.
	DefaultGCPeriod = 20 * time.Second
	// DefaultQuarantine is how long a node must be missing before its pods
	// are collected (upstream's quarantineTime).
	DefaultQuarantine = 40 * time.Second
	// ReasonDeletionByPodGC is the DisruptionTarget condition's reason on
	// an orphaned pod.
	ReasonDeletionByPodGC = "DeletionByPodGC"
)

// Why says why Plan collects a pod.
type Why int

const (
	// Terminated: beyond the terminated-pod threshold.
	Terminated Why = iota
	// Orphaned: bound to a node that no longer exists.
	Orphaned
	// UnscheduledTerminating: being deleted and never scheduled.
	UnscheduledTerminating
)

// Victim is a pod Plan collects and why.
type Victim struct {
	// Pod is the pod.
	Pod *corev1.Pod
	// Why is the reason.
	Why Why
}

// Plan returns the pods to force-delete from all pods: threshold (≤ 0:
// never collect terminated pods for their number) and goneNodes, the node
// names confirmed missing for the quarantine. Each pod appears once.
func Plan(pods []*corev1.Pod, threshold int, goneNodes map[string]bool) []Victim {
	var out []Victim
	taken := map[*corev1.Pod]bool{}
	if threshold > 0 {
		var terminated []*corev1.Pod
		for _, p := range pods {
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				terminated = append(terminated, p)
			}
		}
		if n := len(terminated) - threshold; n > 0 {
			sort.SliceStable(terminated, func(i, j int) bool {
				ei, ej := evicted(terminated[i]), evicted(terminated[j])
				if ei != ej {
					return ei
				}
				return terminated[i].CreationTimestamp.Before(&terminated[j].CreationTimestamp)
			})
			for _, p := range terminated[:n] {
				out = append(out, Victim{p, Terminated})
				taken[p] = true
			}
		}
	}
	for _, p := range pods {
		if taken[p] {
			continue
		}
		switch {
		case p.Spec.NodeName != "" && goneNodes[p.Spec.NodeName]:
			out = append(out, Victim{p, Orphaned})
		case p.Spec.NodeName == "" && p.DeletionTimestamp != nil:
			out = append(out, Victim{p, UnscheduledTerminating})
		}
	}
	return out
}

// evicted reports whether the pod was evicted or disrupted (status reason
// Evicted, or a True DisruptionTarget condition).
func evicted(p *corev1.Pod) bool {
	if p.Status.Reason == "Evicted" {
		return true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Quarantine tracks since when each node a pod names has been missing from
// the node cache. Not safe for concurrent use: one goroutine runs the GC.
type Quarantine struct {
	since map[string]time.Time
}

// Observe records which of the pods' nodes are missing at now (exists
// reports presence in the cache) and returns those missing for at least
// d, the candidates to confirm with the API server. Nodes seen again are
// forgotten.
func (q *Quarantine) Observe(pods []*corev1.Pod, exists func(string) bool, now time.Time, d time.Duration) []string {
	if q.since == nil {
		q.since = map[string]time.Time{}
	}
	missing := map[string]bool{}
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" && !exists(n) {
			missing[n] = true
		}
	}
	for n := range q.since {
		if !missing[n] {
			delete(q.since, n)
		}
	}
	var due []string
	for n := range missing {
		first, ok := q.since[n]
		if !ok {
			q.since[n] = now
			first = now
		}
		if now.Sub(first) >= d {
			due = append(due, n)
		}
	}
	sort.Strings(due)
	return due
}
