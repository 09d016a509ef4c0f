package kubelet

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Reasons the kubelet reports in container states and events, upstream's.
const (
	// ReasonCrashLoopBackOff: the container is waiting for its back-off.
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
	// ReasonContainerCreating: the container is being created.
	ReasonContainerCreating = "ContainerCreating"
	// ReasonPodInitializing: an app container waits for the init
	// containers.
	ReasonPodInitializing = "PodInitializing"
	// ReasonErrImagePull: pulling the image failed.
	ReasonErrImagePull = "ErrImagePull"
	// ReasonImagePullBackOff: the last pull failed; the next waits.
	ReasonImagePullBackOff = "ImagePullBackOff"
	// ReasonDeadlineExceeded: the pod ran past activeDeadlineSeconds.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonErrImageNeverPull: the image is absent and the policy is Never.
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	// ReasonCreateContainerError: CreateContainer failed.
	ReasonCreateContainerError = "CreateContainerError"
	// ReasonCreateContainerConfigError: the container's config could not
	// be built (a missing ConfigMap or Secret key, say).
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	// ReasonRunContainerError: StartContainer failed.
	ReasonRunContainerError = "RunContainerError"
	// ReasonCompleted: a container exited 0.
	ReasonCompleted = "Completed"
	// ReasonError: a container exited non-zero.
	ReasonError = "Error"
)

// minimumGracePeriod is the shortest grace a container is stopped with,
// upstream's minimumGracePeriodInSeconds.
const minimumGracePeriod = 2

// ProbeResults are the latest probe results, by container ID. A container
// without an entry has no result yet.
type ProbeResults struct {
	// Ready is the readiness probe's result.
	Ready map[string]bool
	// Started is the startup probe's result.
	Started map[string]bool
	// LivenessFailed marks containers whose liveness (or startup) probe
	// failed past its threshold: they are killed.
	LivenessFailed map[string]bool
}

// Waiting says why a container is not running now.
type Waiting struct {
	// Reason is upstream's reason, e.g. ReasonCrashLoopBackOff.
	Reason string
	// Message explains it.
	Message string
}

// PodInput is everything ComputePodActions and ComputePodStatus decide from.
// Nothing in it is modified.
type PodInput struct {
	// Pod is the pod as the API server has it.
	Pod *corev1.Pod
	// Observed is what the runtime reports for the pod.
	Observed ObservedPod
	// Backoff is the crash-loop back-off state, by container name.
	Backoff map[string]BackoffEntry
	// Policy is the back-off policy.
	Policy BackoffPolicy
	// Probes are the latest probe results.
	Probes ProbeResults
	// Reasons are why containers failed to start at the last attempt
	// (image pull, create errors), by container name; shown in status.
	Reasons map[string]Waiting
	// Now is the time of the decision.
	Now time.Time
}

// StartContainer is one container to create and start.
type StartContainer struct {
	// Name is the container's name; Init tells which list it is from.
	Name string
	// Init is true for an init container.
	Init bool
	// Index is its index in the pod spec's list.
	Index int
	// Attempt is the new instance's attempt (restart count).
	Attempt uint32
	// Restart is true when an instance ran before: the back-off state is
	// advanced when it starts.
	Restart bool
}

// KillContainer is one running container to stop.
type KillContainer struct {
	// ID is the runtime's container ID; Name the spec name.
	ID, Name string
	// Reason is why, for events and logs.
	Reason string
}

// PodActions are what the kubelet must do for a pod, in order: kill the
// pod, create a sandbox, kill containers, start containers, remove dead
// ones. The zero value means nothing to do.
type PodActions struct {
	// KillPod stops every running container (with GracePeriod) and every
	// ready sandbox of the pod.
	KillPod bool
	// GracePeriod is the containers' stop timeout in seconds for KillPod
	// and KillContainers.
	GracePeriod int64
	// RemoveSandboxes are sandboxes to remove (the pod is being deleted
	// and nothing runs any more).
	RemoveSandboxes []string
	// FinishDelete: the pod is being deleted and nothing of it is left in
	// the runtime; the kubelet deletes the object for good.
	FinishDelete bool
	// CreateSandbox creates a sandbox with Attempt; the starts below then
	// go into it.
	CreateSandbox bool
	// Attempt is the new sandbox's attempt.
	Attempt uint32
	// SandboxID is the existing ready sandbox to start containers in.
	SandboxID string
	// KillContainers are containers to stop.
	KillContainers []KillContainer
	// Start are the containers to create and start, in order (one init
	// container, or the app containers).
	Start []StartContainer
	// RemoveContainers are dead container instances no longer needed for
	// status (older than the two newest of their name).
	RemoveContainers []string
	// Waiting are containers that should start but wait for their
	// back-off, by name.
	Waiting map[string]Waiting
	// RetryAt, when not zero, is when a back-off ends: sync again then.
	RetryAt time.Time
}

// Empty reports whether there is nothing to do.
func (a PodActions) Empty() bool {
	return !a.KillPod && len(a.RemoveSandboxes) == 0 && !a.FinishDelete && !a.CreateSandbox &&
		len(a.KillContainers) == 0 && len(a.Start) == 0 && len(a.RemoveContainers) == 0
}

// ComputePodActions decides what to do for a pod, as upstream's
// computePodActions does:
//   - a pod being deleted is killed (containers, then sandbox), its
//     sandboxes removed, and then its deletion finished;
//   - a pod that is done (see TerminalPhase), or past its
//     activeDeadlineSeconds, only has its containers and sandbox stopped;
//   - a pod without a ready sandbox gets a new one (attempt+1), its
//     leftovers killed, and its first init container (or every app
//     container) started — except a restartPolicy Never pod whose
//     containers already ran;
//   - init containers run one at a time in order, each until it exits 0;
//   - app containers are started when never run, and restarted as their
//     restartPolicy says, after their crash-loop back-off; a container
//     whose liveness probe failed is killed.
func ComputePodActions(in PodInput) PodActions {
	pod, obs := in.Pod, in.Observed
	a := PodActions{Waiting: map[string]Waiting{}}
	if pod.DeletionTimestamp != nil {
		a.GracePeriod = remainingGrace(pod, in.Now)
		if anyRunning(obs) {
			a.KillPod = true
			return a
		}
		for _, s := range obs.Sandboxes {
			a.RemoveSandboxes = append(a.RemoveSandboxes, s.ID)
		}
		a.FinishDelete = len(obs.Sandboxes) == 0 && len(obs.Containers) == 0
		return a
	}
	a.GracePeriod = specGrace(pod)
	if end, ok := activeDeadline(pod); ok {
		if !in.Now.Before(end) {
			a.KillPod = anyRunning(obs)
			return a
		}
		a.RetryAt = end
	}
	if _, done := TerminalPhase(pod, obs); done {
		a.KillPod = anyRunning(obs)
		return a
	}
	sb := obs.Sandbox()
	if sb == nil || !sb.Ready {
		if sb != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever && len(obs.Containers) > 0 {
			// A Never pod whose sandbox died after its containers ran
			// gets no second sandbox.
			a.KillPod = anyRunning(obs)
			return a
		}
		a.KillPod = anyRunning(obs)
		a.CreateSandbox = true
		if sb != nil {
			a.Attempt = sb.Attempt + 1
		}
		if len(pod.Spec.InitContainers) > 0 {
			a.Start = append(a.Start, newStart(obs, pod.Spec.InitContainers[0].Name, true, 0))
		} else {
			for i, c := range pod.Spec.Containers {
				a.Start = append(a.Start, newStart(obs, c.Name, false, i))
			}
		}
		return a
	}
	a.SandboxID = sb.ID
	a.RemoveContainers = deadToRemove(obs)
	if !computeInitActions(in, sb.ID, &a) {
		return a
	}
	for i, c := range pod.Spec.Containers {
		st := obs.LatestIn(sb.ID, c.Name)
		switch {
		case st == nil:
			a.Start = append(a.Start, newStart(obs, c.Name, false, i))
		case st.State == StateRunning:
			if in.Probes.LivenessFailed[st.ID] {
				a.KillContainers = append(a.KillContainers, KillContainer{ID: st.ID, Name: c.Name,
					Reason: fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)})
			}
		case st.State == StateExited:
			if shouldRestart(pod.Spec.RestartPolicy, st.ExitCode) {
				startAfterBackoff(in, &a, c.Name, false, i, st)
			}
		default: // created but never started (its start failed), or unknown: replace it, after the back-off
			a.KillContainers = append(a.KillContainers, KillContainer{ID: st.ID, Name: c.Name, Reason: "container in state " + st.State.String()})
			startAfterBackoff(in, &a, c.Name, false, i, st)
		}
	}
	return a
}

// computeInitActions adds the init containers' actions and reports whether
// they are all done in sandbox sbID: regular ones exited 0, sidecars
// (restartPolicy Always) started — and past their startup probe. Sidecars
// that stop are restarted (after their back-off) whatever the pod's
// restartPolicy, and killed when their liveness probe fails.
func computeInitActions(in PodInput, sbID string, a *PodActions) bool {
	pod, obs := in.Pod, in.Observed
	// Once app containers ran in this sandbox the pod is initialized: a
	// sidecar restarting does not hold them back.
	initialized := false
	for _, c := range pod.Spec.Containers {
		initialized = initialized || obs.LatestIn(sbID, c.Name) != nil
	}
	for i, c := range pod.Spec.InitContainers {
		st := obs.LatestIn(sbID, c.Name)
		sidecar := IsSidecar(&c)
		switch {
		case st == nil:
			a.Start = append(a.Start, newStart(obs, c.Name, true, i))
			return false
		case st.State == StateRunning && sidecar:
			if in.Probes.LivenessFailed[st.ID] {
				a.KillContainers = append(a.KillContainers, KillContainer{ID: st.ID, Name: c.Name,
					Reason: fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)})
			}
			if c.StartupProbe != nil && !in.Probes.Started[st.ID] {
				return false
			}
			continue
		case st.State == StateRunning:
			return false
		case st.State == StateExited && st.ExitCode == 0 && !sidecar:
			continue
		case st.State == StateExited:
			// restartPolicy Never: TerminalPhase already made the pod Failed
			// for a regular init container.
			startAfterBackoff(in, a, c.Name, true, i, st)
			if sidecar && initialized {
				continue
			}
			return false
		default:
			a.KillContainers = append(a.KillContainers, KillContainer{ID: st.ID, Name: c.Name, Reason: "container in state " + st.State.String()})
			startAfterBackoff(in, a, c.Name, true, i, st)
			return false
		}
	}
	return true
}

// IsSidecar reports whether an init container is a sidecar: restartPolicy
// Always, it keeps running next to the app containers.
func IsSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// startAfterBackoff starts a container that ran before, unless its
// back-off holds it.
func startAfterBackoff(in PodInput, a *PodActions, name string, init bool, index int, last *ObservedContainer) {
	e, ok := in.Backoff[name]
	if until, wait := in.Policy.Wait(e, ok, in.Now); wait {
		a.Waiting[name] = Waiting{Reason: ReasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", e.Delay, name, in.Pod.Name, in.Pod.Namespace, in.Pod.UID)}
		if a.RetryAt.IsZero() || until.Before(a.RetryAt) {
			a.RetryAt = until
		}
		return
	}
	a.Start = append(a.Start, StartContainer{Name: name, Init: init, Index: index, Attempt: last.Attempt + 1, Restart: true})
}

// newStart is the start of a container with no instance in the current
// sandbox; its attempt follows any instance in older sandboxes.
func newStart(obs ObservedPod, name string, init bool, index int) StartContainer {
	s := StartContainer{Name: name, Init: init, Index: index}
	if l := obs.Latest(name); l != nil {
		s.Attempt, s.Restart = l.Attempt+1, true
	}
	return s
}

// shouldRestart applies a restartPolicy to a container that exited.
func shouldRestart(p corev1.RestartPolicy, exitCode int32) bool {
	switch p {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

// TerminalPhase reports whether the pod is done — it will never run a
// container again — and its final phase: Succeeded or Failed. A pod the
// API server already has in a terminal phase stays there; otherwise an init
// container that failed under restartPolicy Never fails the pod, and app
// containers that all exited and will not be restarted end it (Succeeded
// when all exited 0).
func TerminalPhase(pod *corev1.Pod, obs ObservedPod) (corev1.PodPhase, bool) {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return pod.Status.Phase, true
	}
	policy := pod.Spec.RestartPolicy
	if policy == corev1.RestartPolicyAlways || policy == "" {
		return "", false
	}
	sb := obs.Sandbox()
	if sb == nil {
		return "", false
	}
	if policy == corev1.RestartPolicyNever {
		for _, c := range pod.Spec.InitContainers {
			st := obs.LatestIn(sb.ID, c.Name)
			if st != nil && st.State == StateExited && st.ExitCode != 0 && !IsSidecar(&c) {
				return corev1.PodFailed, true
			}
		}
	}
	failed := false
	for _, c := range pod.Spec.Containers {
		st := obs.Latest(c.Name)
		if st == nil || st.State != StateExited || shouldRestart(policy, st.ExitCode) {
			return "", false
		}
		failed = failed || st.ExitCode != 0
	}
	if failed {
		return corev1.PodFailed, true
	}
	return corev1.PodSucceeded, true
}

func anyRunning(obs ObservedPod) bool {
	for _, c := range obs.Containers {
		if c.State == StateRunning || c.State == StateCreated || c.State == StateUnknown {
			return true
		}
	}
	for _, s := range obs.Sandboxes {
		if s.Ready {
			return true
		}
	}
	return false
}

// deadToRemove lists the dead instances beyond the two newest of each
// name (the newest and the one before it feed the status).
func deadToRemove(obs ObservedPod) []string {
	var out []string
	seen := map[string]int{}
	for _, c := range obs.Containers {
		seen[c.Name]++
		if seen[c.Name] > 2 && c.State == StateExited {
			out = append(out, c.ID)
		}
	}
	return out
}

// specGrace is the pod's terminationGracePeriodSeconds (default 30).
func specGrace(pod *corev1.Pod) int64 {
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	return max(g, minimumGracePeriod)
}

// remainingGrace is what is left of a deleted pod's grace period at now:
// the API server set deletionTimestamp to the deletion time plus the
// grace. Never below the minimum, so that SIGTERM always comes first.
func remainingGrace(pod *corev1.Pod, now time.Time) int64 {
	grace := specGrace(pod)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	}
	if pod.DeletionTimestamp != nil {
		left := int64(pod.DeletionTimestamp.Time.Sub(now).Round(time.Second) / time.Second)
		grace = min(grace, left)
	}
	return max(grace, minimumGracePeriod)
}

// activeDeadline is when a pod with activeDeadlineSeconds must stop: that
// long after its startTime. ok is false without a deadline or a start time.
func activeDeadline(pod *corev1.Pod) (time.Time, bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime == nil {
		return time.Time{}, false
	}
	return pod.Status.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second), true
}
