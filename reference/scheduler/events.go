package scheduler

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// nonTerminalPods selects the pods that matter to the scheduler, as the
// kube-scheduler's pod informer does.
const nonTerminalPods = "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)

// newPodInformer watches every non-terminal pod.
func newPodInformer(c kubernetes.Interface, resync time.Duration) toolscache.SharedIndexInformer {
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = nonTerminalPods
			return c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = nonTerminalPods
			return c.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	return toolscache.NewSharedIndexInformer(lw, &corev1.Pod{}, resync, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
}

// responsible reports whether one of the profiles schedules pod.
func (s *Scheduler) responsible(pod *corev1.Pod) bool {
	_, ok := s.profiles[pod.Spec.SchedulerName]
	return ok
}

func asPod(obj any) *corev1.Pod {
	switch o := obj.(type) {
	case *corev1.Pod:
		return o
	case toolscache.DeletedFinalStateUnknown:
		p, _ := o.Obj.(*corev1.Pod)
		return p
	}
	return nil
}

func asNode(obj any) *corev1.Node {
	switch o := obj.(type) {
	case *corev1.Node:
		return o
	case toolscache.DeletedFinalStateUnknown:
		n, _ := o.Obj.(*corev1.Node)
		return n
	}
	return nil
}

func (s *Scheduler) onPodAdd(obj any) {
	pod := asPod(obj)
	if pod == nil {
		return
	}
	if pod.Spec.NodeName != "" {
		s.cache.AddPod(pod)
		s.queue.Delete(pod.UID)
		return
	}
	if s.responsible(pod) && !s.cache.IsAssumed(pod.UID) {
		s.queue.Add(pod)
		s.metrics.queueIncomingPods.WithLabelValues("active", "PodAdd").Inc()
	}
}

func (s *Scheduler) onPodUpdate(oldObj, newObj any) {
	old, pod := asPod(oldObj), asPod(newObj)
	if pod == nil || old == nil {
		return
	}
	if pod.Spec.NodeName != "" {
		s.queue.Delete(pod.UID)
		s.cache.UpdatePod(pod)
		if old.Spec.NodeName != "" && !equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
			// An assigned pod's labels may matter to another pod's
			// (anti-)affinity or spreading.
			s.queue.MoveAllUnschedulable()
		}
		return
	}
	if !s.responsible(pod) || s.cache.IsAssumed(pod.UID) {
		return
	}
	s.queue.Update(pod)
}

func (s *Scheduler) onPodDelete(obj any) {
	pod := asPod(obj)
	if pod == nil {
		return
	}
	if pod.Spec.NodeName != "" {
		s.cache.RemovePod(pod)
		s.queue.Delete(pod.UID)
		s.explained.forget(pod.Namespace, pod.Name)
		// The pod's room on its node is free again.
		s.queue.MoveAllUnschedulable()
		s.metrics.queueIncomingPods.WithLabelValues("active", "AssignedPodDelete").Inc()
		return
	}
	s.queue.Delete(pod.UID)
	s.explained.forget(pod.Namespace, pod.Name)
}

func (s *Scheduler) onNodeAdd(obj any) {
	node := asNode(obj)
	if node == nil {
		return
	}
	s.cache.AddNode(node)
	s.queue.MoveAllUnschedulable()
	s.metrics.queueIncomingPods.WithLabelValues("active", "NodeAdd").Inc()
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, node := asNode(oldObj), asNode(newObj)
	if node == nil || old == nil {
		return
	}
	relevant := nodeSchedulingChanged(old, node)
	s.cache.UpdateNode(node, relevant)
	if relevant {
		s.queue.MoveAllUnschedulable()
		s.metrics.queueIncomingPods.WithLabelValues("active", "NodeUpdate").Inc()
	}
}

// nodeSchedulingChanged reports whether a node update may make a pod fit:
// its spec (taints, unschedulable), labels, annotations, allocatable or
// condition statuses changed (heartbeats alone do not count).
func nodeSchedulingChanged(old, node *corev1.Node) bool {
	if !equality.Semantic.DeepEqual(old.Spec, node.Spec) ||
		!equality.Semantic.DeepEqual(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, node.Annotations) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		len(old.Status.Conditions) != len(node.Status.Conditions) {
		return true
	}
	for i := range node.Status.Conditions {
		a, b := old.Status.Conditions[i], node.Status.Conditions[i]
		if a.Type != b.Type || a.Status != b.Status {
			return true
		}
	}
	return false
}

func (s *Scheduler) onNodeDelete(obj any) {
	node := asNode(obj)
	if node == nil {
		return
	}
	s.cache.RemoveNode(node.Name)
}
