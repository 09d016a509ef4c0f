package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
)

// Reasons of the PodScheduled=False condition, as the kube-scheduler's.
const (
	reasonUnschedulable  = corev1.PodReasonUnschedulable
	reasonSchedulerError = corev1.PodReasonSchedulerError
)

// scheduleOne pops one pod and runs its scheduling cycle; a successful
// cycle ends by starting the pod's binding in its own goroutine.
func (s *Scheduler) scheduleOne(ctx context.Context) {
	qp, cycleNo := s.queue.Pop(ctx)
	if qp == nil {
		return
	}
	pod := s.queue.PodOf(qp)
	prof := s.profiles[pod.Spec.SchedulerName]
	if prof == nil || pod.DeletionTimestamp != nil {
		s.queue.Done(pod.UID)
		return
	}
	start := time.Now()
	c := &cycle{prof: prof, state: &spec.CycleState{}, pod: pod, sample: cycleNo%10 == 1, nominated: s.queue.Nominated()}
	if s.cfg.Explain {
		c.explain = &Explanation{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID),
			SchedulerName: prof.name, Attempt: qp.attempts}
	}
	node, err := s.runCycle(ctx, c)
	s.metrics.algorithmDuration.Observe(since(start))
	if err != nil {
		s.cycleFailed(ctx, c, qp, start, err)
		return
	}
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = node
	if !s.reserve(ctx, c, qp, assumed, node) {
		return
	}
	if err := s.cache.AssumePod(assumed); err != nil {
		prof.RunUnreserve(ctx, c.state, assumed, node, -1, s.unreservePanicked)
		s.metrics.scheduleAttempts.WithLabelValues("error", prof.name).Inc()
		s.fail(ctx, c, qp, err.Error(), reasonSchedulerError, "", false)
		return
	}
	s.queue.Done(pod.UID)
	var annotation string
	if c.explain != nil {
		c.explain.Result, c.explain.Node, c.explain.Time = "Scheduled", node, time.Now()
		sortExplanation(c.explain)
		s.explained.put(c.explain)
		if s.cfg.ExplainAnnotation {
			annotation = annotationValue(c.explain)
		}
	}
	s.bindings.Add(1)
	go func() {
		defer s.bindings.Done()
		s.bindingCycle(ctx, c, qp, assumed, node, start, annotation)
	}()
}

// runCycle brings the snapshot up to date and runs the scheduling cycle,
// returning the chosen node.
func (s *Scheduler) runCycle(ctx context.Context, c *cycle) (node string, err error) {
	// Every plugin call is guarded; this is the last line of defence
	// against a bug in the cycle itself.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("scheduling cycle panicked: %v", r)
		}
	}()
	s.cache.UpdateSnapshot(s.snap)
	res, err := s.schedulePod(ctx, c, s.snap)
	if err != nil {
		return "", err
	}
	return res.Node, nil
}

// cycleFailed handles a cycle that chose no node: PostFilter (preemption)
// for a pod that fits nowhere, then the failure is reported and the pod
// requeued.
func (s *Scheduler) cycleFailed(ctx context.Context, c *cycle, qp *queuedPod, start time.Time, err error) {
	prof := c.prof
	var fe *framework.FitError
	if errors.As(err, &fe) {
		nominated := ""
		if fe.NumAllNodes > 0 && len(prof.PostFilter) > 0 {
			nominated = s.runPostFilter(ctx, c, fe)
		}
		s.metrics.scheduleAttempts.WithLabelValues("unschedulable", prof.name).Inc()
		s.metrics.attemptDuration.WithLabelValues("unschedulable", prof.name).Observe(since(start))
		s.fail(ctx, c, qp, fe.Error(), reasonUnschedulable, nominated, true)
		return
	}
	if ctx.Err() != nil {
		s.queue.Requeue(qp, nil, false)
		return
	}
	s.metrics.scheduleAttempts.WithLabelValues("error", prof.name).Inc()
	s.metrics.attemptDuration.WithLabelValues("error", prof.name).Observe(since(start))
	s.fail(ctx, c, qp, err.Error(), reasonSchedulerError, "", false)
}

// reserve runs the Reserve plugins for the assumed pod; when one fails it
// undoes the ones that ran (this one included: Unreserve is idempotent),
// fails the attempt and returns false.
func (s *Scheduler) reserve(ctx context.Context, c *cycle, qp *queuedPod, assumed *corev1.Pod, node string) bool {
	prof := c.prof
	for i, p := range prof.Reserve {
		st := prof.RunReserve(ctx, s.sampled(prof, c.sample), c.state, assumed, node, p)
		if st.IsSuccess() {
			continue
		}
		prof.RunUnreserve(ctx, c.state, assumed, node, i+1, s.unreservePanicked)
		if st.IsRejected() {
			s.metrics.scheduleAttempts.WithLabelValues("unschedulable", prof.name).Inc()
			s.fail(ctx, c, qp, st.Message(), reasonUnschedulable, "", true)
		} else {
			s.metrics.scheduleAttempts.WithLabelValues("error", prof.name).Inc()
			s.fail(ctx, c, qp, fmt.Sprintf("running Reserve plugin %q: %v", st.Plugin, framework.StatusErr(st)), reasonSchedulerError, "", false)
		}
		return false
	}
	return true
}

// unreservePanicked logs an Unreserve that panicked.
func (s *Scheduler) unreservePanicked(plugin string, r any) {
	s.log.Error("plugin panicked in Unreserve", "plugin", plugin, "panic", fmt.Sprint(r))
}

// runPostFilter runs the PostFilter plugins (preemption) after no node
// fit; it returns the nominated node, if any, and adds the plugins'
// messages to fe. The PodDisruptionBudgets preemption weighs are listed
// first and served through the handle for the duration; when they cannot
// be listed, no PostFilter runs (preempting blind to the budgets could
// violate them) and the failure joins the message.
func (s *Scheduler) runPostFilter(ctx context.Context, c *cycle, fe *framework.FitError) string {
	start := time.Now()
	var msgs []string
	defer func() {
		s.metrics.extensionPointDuration.WithLabelValues(framework.PostFilter, "Success", c.prof.name).Observe(since(start))
		fe.PostFilterMessage = strings.Join(msgs, " ")
	}()
	pdbs, err := s.listPDBs()
	if err != nil {
		s.log.Warn("PostFilter skipped", "pod", c.pod.Namespace+"/"+c.pod.Name, "err", err)
		msgs = append(msgs, "preemption: "+err.Error())
		return ""
	}
	s.pdbs = pdbs
	defer func() { s.pdbs = nil }()
	for _, p := range c.prof.PostFilter {
		node, st := c.prof.RunPostFilter(ctx, s.sampled(c.prof, c.sample), c.state, c.pod, s.snap, fe.Statuses, p)
		if st.IsSuccess() {
			if node != "" {
				return node
			}
			continue
		}
		if st.Code == spec.Error {
			s.log.Warn("PostFilter failed", "plugin", st.Plugin, "pod", c.pod.Namespace+"/"+c.pod.Name, "err", framework.StatusErr(st))
		}
		if m := st.Message(); m != "" {
			msgs = append(msgs, m)
		}
	}
	return ""
}

// bindingCycle binds an assumed pod; on failure it undoes the reservation,
// forgets the pod and requeues it.
func (s *Scheduler) bindingCycle(ctx context.Context, c *cycle, qp *queuedPod, assumed *corev1.Pod, node string, start time.Time, annotation string) {
	prof := c.prof
	bindStart := time.Now()
	var err error
	if !s.cache.HasNode(node) {
		err = fmt.Errorf("node %q was deleted before the pod could be bound to it", node)
	} else {
		if annotation != "" {
			// A bind plugin binding through the handle carries it too.
			s.bindAnnotations.Store(assumed.UID, annotation)
		}
		var annotated bool
		annotated, err = s.bindPod(ctx, c, assumed, node, annotation)
		if _, pending := s.bindAnnotations.LoadAndDelete(assumed.UID); !pending && annotation != "" {
			annotated = true
		}
		if err == nil && annotation != "" && !annotated {
			// Bound by an extender: patching the pod needs RBAC beyond
			// system:kube-scheduler's.
			s.writeAnnotation(context.WithoutCancel(ctx), assumed, annotation)
		}
	}
	s.metrics.bindingDuration.Observe(since(bindStart))
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, errBindRejected) {
			err = ctx.Err()
		}
		prof.RunUnreserve(context.WithoutCancel(ctx), c.state, assumed, node, -1, s.unreservePanicked)
		s.cache.ForgetPod(assumed)
		s.metrics.scheduleAttempts.WithLabelValues("error", prof.name).Inc()
		s.metrics.attemptDuration.WithLabelValues("error", prof.name).Observe(since(start))
		if c.explain != nil {
			c.explain.Result, c.explain.Message = "Error", "Binding rejected: "+err.Error()
		}
		s.queue.RequeueAfterBindFailure(qp, nil)
		// The forgotten pod's room is free again.
		s.queue.MoveAllUnschedulable()
		if ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
			s.reportFailure(rctx, prof, c.pod, "Binding rejected: "+err.Error(), reasonSchedulerError, "")
			cancel()
		}
		return
	}
	s.cache.FinishBinding(assumed, time.Now())
	s.metrics.scheduleAttempts.WithLabelValues("scheduled", prof.name).Inc()
	s.metrics.attemptDuration.WithLabelValues("scheduled", prof.name).Observe(since(start))
	attempts := strconv.Itoa(min(qp.attempts, 15))
	s.metrics.podSchedulingDuration.WithLabelValues(attempts).Observe(since(qp.added))
	s.metrics.podSchedulingSLIDuration.WithLabelValues(attempts).Observe(since(qp.added))
	s.metrics.podSchedulingAttempts.Observe(float64(qp.attempts))
	if r := s.recorders[prof.name]; r != nil {
		r.Eventf(assumed, nil, corev1.EventTypeNormal, "Scheduled", "Binding", "Successfully assigned %v/%v to %v", assumed.Namespace, assumed.Name, node)
	}
}

// reportTimeout bounds the API calls that report a failure.
const reportTimeout = 30 * time.Second

// errBindRejected marks a bind refused by a plugin or extender.
var errBindRejected = errors.New("bind rejected")

// bindPod binds through the first interested binding extender, else the
// bind plugins in order (Skip passes on), else pods/binding.
// It reports whether the binding carried the explanation annotation.
func (s *Scheduler) bindPod(ctx context.Context, c *cycle, pod *corev1.Pod, node, annotation string) (bool, error) {
	if e := binderExtender(c.prof, pod); e != nil {
		if err := e.bind(ctx, pod, node); err != nil {
			s.extenderFailed(e, "bind", pod, err)
			return false, fmt.Errorf("extender %s: %w", e.cfg.URLPrefix, err)
		}
		return false, nil
	}
	for _, p := range c.prof.Bind {
		st := c.prof.RunBind(ctx, s.observer(c.prof), c.state, pod, node, p)
		if st.IsSkip() {
			continue
		}
		if !st.IsSuccess() {
			return false, fmt.Errorf("%w by plugin %q: %v", errBindRejected, st.Plugin, framework.StatusErr(st))
		}
		return false, nil
	}
	s.bindAnnotations.Delete(pod.UID)
	return true, s.bindWithAnnotation(ctx, pod, node, annotation)
}

// writeAnnotation sets the explanation annotation with a merge patch.
func (s *Scheduler) writeAnnotation(ctx context.Context, pod *corev1.Pod, annotation string) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{ExplanationAnnotation: annotation}}})
	if _, err := s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		s.log.Warn("writing the explanation annotation", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// bindThroughAPI creates the pod's Binding (pods/binding).
// The binding carries the pod's pending explanation annotation, if any.
func (s *Scheduler) bindThroughAPI(ctx context.Context, pod *corev1.Pod, node string) error {
	annotation := ""
	if v, ok := s.bindAnnotations.LoadAndDelete(pod.UID); ok {
		annotation = v.(string)
	}
	return s.bindWithAnnotation(ctx, pod, node, annotation)
}

func (s *Scheduler) bindWithAnnotation(ctx context.Context, pod *corev1.Pod, node, annotation string) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	if annotation != "" {
		b.Annotations = map[string]string{ExplanationAnnotation: annotation}
	}
	return s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
}

// fail ends a failed scheduling cycle: the pod goes back to the queue,
// gets a FailedScheduling event and a PodScheduled=False condition.
func (s *Scheduler) fail(ctx context.Context, c *cycle, qp *queuedPod, msg, reason, nominated string, unschedulable bool) {
	pod := c.pod
	s.log.Debug("unable to schedule pod", "pod", pod.Namespace+"/"+pod.Name, "reason", reason, "message", msg)
	if c.explain != nil {
		c.explain.Result, c.explain.Message, c.explain.Time = "Unschedulable", msg, time.Now()
		if reason == reasonSchedulerError {
			c.explain.Result = "Error"
		}
		sortExplanation(c.explain)
		s.explained.put(c.explain)
	}
	// The pod may have gone or been bound by someone else meanwhile.
	cur, err := s.podLister.Pods(pod.Namespace).Get(pod.Name)
	switch {
	case apierrors.IsNotFound(err), err == nil && cur.UID != pod.UID:
		s.queue.Delete(pod.UID)
		return
	case err == nil && cur.Spec.NodeName != "":
		s.queue.Delete(pod.UID)
		return
	case err == nil:
		pod = cur
	}
	if nominated != "" {
		pod = pod.DeepCopy()
		pod.Status.NominatedNodeName = nominated
	}
	s.queue.Requeue(qp, pod, unschedulable)
	var annotation string
	if s.cfg.ExplainAnnotation && c.explain != nil {
		annotation = annotationValue(c.explain)
	}
	// Reported asynchronously (as upstream), bounded in time, and waited
	// for by the scheduling loop's shutdown.
	s.bindings.Add(1)
	go func() {
		defer s.bindings.Done()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
		defer cancel()
		s.reportFailureWithAnnotation(rctx, c.prof, pod, msg, reason, nominated, annotation)
	}()
}

// reportFailure records a FailedScheduling event and the PodScheduled
// condition.
func (s *Scheduler) reportFailure(ctx context.Context, prof *schedProfile, pod *corev1.Pod, msg, reason, nominated string) {
	s.reportFailureWithAnnotation(ctx, prof, pod, msg, reason, nominated, "")
}

func (s *Scheduler) reportFailureWithAnnotation(ctx context.Context, prof *schedProfile, pod *corev1.Pod, msg, reason, nominated, annotation string) {
	if r := s.recorders[prof.name]; r != nil {
		r.Eventf(pod, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "%s", msg)
	}
	if err := s.setPodScheduledFalse(ctx, pod, reason, msg, nominated); err != nil && !apierrors.IsNotFound(err) {
		s.log.Warn("updating the pod's PodScheduled condition", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	if annotation != "" && pod.Annotations[ExplanationAnnotation] != annotation {
		s.writeAnnotation(ctx, pod, annotation)
	}
}

// setPodScheduledFalse patches the pod's status with PodScheduled=False
// (and nominatedNodeName), unless it already says so.
func (s *Scheduler) setPodScheduledFalse(ctx context.Context, pod *corev1.Pod, reason, msg, nominated string) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == reason && c.Message == msg &&
			(nominated == "" || pod.Status.NominatedNodeName == nominated) {
			return nil
		}
	}
	cond := map[string]any{
		"type": corev1.PodScheduled, "status": corev1.ConditionFalse, "reason": reason, "message": msg,
		"lastProbeTime": nil, "lastTransitionTime": metav1.Now(),
	}
	status := map[string]any{"conditions": []any{cond}}
	if nominated != "" {
		status["nominatedNodeName"] = nominated
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	_, err = s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// preempt marks each victim with a DisruptionTarget condition, deletes it
// and nominates nodeName for the preemptor.
func (s *Scheduler) preempt(ctx context.Context, prof *schedProfile, preemptor *corev1.Pod, node string, victims []*corev1.Pod) error {
	s.metrics.preemptionAttempts.Inc()
	s.metrics.preemptionVictims.Observe(float64(len(victims)))
	for _, v := range victims {
		cond := map[string]any{
			"type": corev1.DisruptionTarget, "status": corev1.ConditionTrue, "reason": corev1.PodReasonPreemptionByScheduler,
			"message": fmt.Sprintf("%s: preempting to accommodate a higher priority pod", prof.name), "lastTransitionTime": metav1.Now(),
		}
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []any{cond}}})
		if err != nil {
			return err
		}
		if _, err := s.client.CoreV1().Pods(v.Namespace).Patch(ctx, v.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("marking victim %s/%s: %w", v.Namespace, v.Name, err)
		}
		uid := v.UID
		if err := s.client.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting victim %s/%s: %w", v.Namespace, v.Name, err)
		}
		if r := s.recorders[prof.name]; r != nil {
			r.Eventf(v, preemptor, corev1.EventTypeNormal, "Preempted", "Preempting", "Preempted by pod %v on node %v", preemptor.UID, node)
		}
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"nominatedNodeName": node}})
	if err != nil {
		return err
	}
	if _, err := s.client.CoreV1().Pods(preemptor.Namespace).Patch(ctx, preemptor.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("nominating node %s for %s/%s: %w", node, preemptor.Namespace, preemptor.Name, err)
	}
	return nil
}
