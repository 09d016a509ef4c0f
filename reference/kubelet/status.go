package kubelet

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod condition reasons, upstream's.
const (
	// ReasonContainersNotInitialized: an init container has not exited 0.
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	// ReasonContainersNotReady: an app container is not ready.
	ReasonContainersNotReady = "ContainersNotReady"
	// ReasonPodCompleted: the pod is done.
	ReasonPodCompleted = "PodCompleted"
	// ReasonReadinessGatesNotReady: a readiness gate is not True.
	ReasonReadinessGatesNotReady = "ReadinessGatesNotReady"
)

// StatusInput is what ComputePodStatus needs beyond PodInput.
type StatusInput struct {
	PodInput
	// Waiting are the containers held back by ComputePodActions.
	Waiting map[string]Waiting
	// RuntimeName prefixes container IDs ("containerd://ID").
	RuntimeName string
	// HostIPs are the node's addresses, primary first.
	HostIPs []string
}

// ComputePodStatus derives a pod's status from the runtime's view, as
// upstream's kubelet does: phase (Failed with reason DeadlineExceeded past
// activeDeadlineSeconds), the conditions PodReadyToStartContainers,
// Initialized, ContainersReady and Ready (PodScheduled and conditions of
// other owners are kept), init and app container statuses, pod and host
// IPs and the start time. Transition times are kept from the pod's current
// status for conditions whose status did not change. The result is new;
// the input pod is not modified.
func ComputePodStatus(in StatusInput) corev1.PodStatus {
	pod, obs := in.Pod, in.Observed
	old := pod.Status
	now := apiTime(in.Now)
	st := corev1.PodStatus{
		QOSClass:  old.QOSClass,
		StartTime: old.StartTime,
		Message:   old.Message,
		Reason:    old.Reason,
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	for _, ip := range in.HostIPs {
		st.HostIPs = append(st.HostIPs, corev1.HostIP{IP: ip})
	}
	if len(in.HostIPs) > 0 {
		st.HostIP = in.HostIPs[0]
	}
	sb := obs.Sandbox()
	if pod.Spec.HostNetwork {
		st.PodIP, st.PodIPs = st.HostIP, nil
		for _, ip := range in.HostIPs {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	} else if sb != nil && len(sb.IPs) > 0 {
		st.PodIP = sb.IPs[0]
		for _, ip := range sb.IPs {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	} else {
		// Keep the IPs the pod had once its sandbox is gone, as upstream.
		st.PodIP, st.PodIPs = old.PodIP, old.PodIPs
	}

	sbID := ""
	if sb != nil {
		sbID = sb.ID
	}
	initialized := true
	var notInit []string
	var sidecarsNotReady []string
	for _, c := range pod.Spec.InitContainers {
		cs := containerStatus(in, c, sbID, true)
		l := obs.LatestIn(sbID, c.Name)
		if IsSidecar(&c) {
			if !cs.Ready {
				sidecarsNotReady = append(sidecarsNotReady, c.Name)
			}
			if l == nil || l.State != StateRunning || (c.StartupProbe != nil && !in.Probes.Started[l.ID]) {
				if !appsStarted(pod, obs, sbID) {
					initialized = false
					notInit = append(notInit, c.Name)
				}
			}
		} else {
			// A regular init container is ready once it exited 0.
			cs.Ready = l != nil && l.State == StateExited && l.ExitCode == 0
			if !cs.Ready {
				initialized = false
				notInit = append(notInit, c.Name)
			}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	if sb == nil && len(pod.Spec.InitContainers) > 0 {
		initialized = false
	}
	allReady := len(sidecarsNotReady) == 0
	notReady := sidecarsNotReady
	for _, c := range pod.Spec.Containers {
		cs := containerStatus(in, c, sbID, !initialized)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			allReady = false
			notReady = append(notReady, c.Name)
		}
	}
	phase, done := TerminalPhase(pod, obs)
	if done && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && anyContainerRunning(obs) {
		// As upstream: a pod turns Succeeded or Failed only once none of
		// its containers (sidecars included) runs any more.
		done = false
	}
	if end, ok := activeDeadline(pod); ok && !done && !in.Now.Before(end) {
		phase, done = corev1.PodFailed, true
		st.Reason, st.Message = ReasonDeadlineExceeded, "Pod was active on the node longer than the specified deadline"
	}
	if !done {
		phase = runningPhase(pod, initialized, st.ContainerStatuses)
	}
	st.Phase = phase

	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: now}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	var conds []corev1.PodCondition
	for _, o := range old.Conditions {
		switch o.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		default:
			conds = append(conds, o) // PodScheduled, readiness gates: not ours
		}
	}
	sandboxOK := sb != nil && sb.Ready
	conds = append(conds, cond(corev1.PodReadyToStartContainers, sandboxOK, "", ""))
	if done && phase == corev1.PodSucceeded {
		initialized = true // upstream: a completed pod is initialized
	}
	conds = append(conds, cond(corev1.PodInitialized, initialized, ReasonContainersNotInitialized, listMsg("containers with incomplete status", notInit)))
	readyReason, readyMsg := ReasonContainersNotReady, listMsg("containers with unready status", notReady)
	if done {
		allReady, readyReason, readyMsg = false, ReasonPodCompleted, ""
	}
	conds = append(conds, cond(corev1.ContainersReady, allReady, readyReason, readyMsg))
	podReady := allReady
	if podReady {
		var gates []string
		for _, g := range pod.Spec.ReadinessGates {
			if !conditionTrue(old.Conditions, g.ConditionType) {
				gates = append(gates, string(g.ConditionType))
			}
		}
		if len(gates) > 0 {
			podReady, readyReason = false, ReasonReadinessGatesNotReady
			readyMsg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not True", strings.Join(gates, ", "))
		}
	}
	conds = append(conds, cond(corev1.PodReady, podReady, readyReason, readyMsg))
	st.Conditions = conds
	return st
}

func conditionTrue(cs []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range cs {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func listMsg(prefix string, names []string) string {
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return fmt.Sprintf("%s: [%s]", prefix, strings.Join(names, " "))
}

// runningPhase is the phase of a pod that is not done, upstream's
// getPhase: Pending until initialized and every container has run, then
// Running.
func runningPhase(pod *corev1.Pod, initialized bool, statuses []corev1.ContainerStatus) corev1.PodPhase {
	if !initialized {
		return corev1.PodPending
	}
	running, stopped, waiting := 0, 0, 0
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
		case cs.LastTerminationState.Terminated != nil:
			stopped++ // waiting to restart
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0 || stopped > 0:
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// containerStatus is one container's status. pending tells an app
// container that the init containers have not finished.
func containerStatus(in StatusInput, c corev1.Container, sbID string, pending bool) corev1.ContainerStatus {
	obs := in.Observed
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	f := false
	cs.Started = &f
	l := obs.Latest(c.Name)
	if l == nil {
		w := Waiting{Reason: ReasonContainerCreating}
		if pending {
			w.Reason = ReasonPodInitializing
		}
		if r, ok := in.Reasons[c.Name]; ok {
			w = r
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		return cs
	}
	cs.ContainerID = in.RuntimeName + "://" + l.ID
	if l.ImageRef != "" {
		cs.ImageID = l.ImageRef
	}
	cs.RestartCount = int32(l.Attempt)
	switch l.State {
	case StateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: apiTime(l.StartedAt)}
		started := c.StartupProbe == nil || in.Probes.Started[l.ID]
		cs.Started = &started
		cs.Ready = started && (c.ReadinessProbe == nil || in.Probes.Ready[l.ID])
		if p := obs.Previous(c.Name); p != nil && p.State == StateExited {
			cs.LastTerminationState.Terminated = terminated(in.RuntimeName, p)
		}
	case StateExited:
		if w, ok := waitingFor(in, c.Name); ok && l.SandboxID == sbID {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
			cs.LastTerminationState.Terminated = terminated(in.RuntimeName, l)
		} else {
			cs.State.Terminated = terminated(in.RuntimeName, l)
			if p := obs.Previous(c.Name); p != nil && p.State == StateExited {
				cs.LastTerminationState.Terminated = terminated(in.RuntimeName, p)
			}
		}
	default: // created, its start failed or is under way
		w := Waiting{Reason: ReasonContainerCreating}
		if r, ok := waitingFor(in, c.Name); ok {
			w = r
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
	}
	return cs
}

// waitingFor is the back-off or failure reason a container waits with.
func waitingFor(in StatusInput, name string) (Waiting, bool) {
	if w, ok := in.Waiting[name]; ok {
		return w, true
	}
	w, ok := in.Reasons[name]
	return w, ok
}

func terminated(runtimeName string, c *ObservedContainer) *corev1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" {
		reason = ReasonCompleted
		if c.ExitCode != 0 {
			reason = ReasonError
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    c.ExitCode,
		Reason:      reason,
		Message:     c.Message,
		StartedAt:   apiTime(c.StartedAt),
		FinishedAt:  apiTime(c.FinishedAt),
		ContainerID: runtimeName + "://" + c.ID,
	}
}

// StatusChanged reports whether status b differs from a in what the
// kubelet owns.
func StatusChanged(a, b corev1.PodStatus) bool {
	return !equality.Semantic.DeepEqual(a, b)
}

// apiTime is t as the API stores it: whole seconds; zero stays zero.
func apiTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}

// appsStarted reports whether an app container ran in sandbox sbID (the
// pod got past its init containers there).
func appsStarted(pod *corev1.Pod, obs ObservedPod, sbID string) bool {
	for _, c := range pod.Spec.Containers {
		if obs.LatestIn(sbID, c.Name) != nil {
			return true
		}
	}
	return false
}

// anyContainerRunning reports whether a container of the pod runs.
func anyContainerRunning(obs ObservedPod) bool {
	for _, c := range obs.Containers {
		if c.State == StateRunning {
			return true
		}
	}
	return false
}
