package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func conditions(st corev1.PodStatus) map[corev1.PodConditionType]corev1.PodCondition {
	out := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range st.Conditions {
		out[c.Type] = c
	}
	return out
}

func TestComputePodStatus(t *testing.T) {
	ready := []ObservedSandbox{sandbox()}
	type want struct {
		phase                                corev1.PodPhase
		podIP                                string
		sandboxReady, initialized, ctrsReady corev1.ConditionStatus
		readyReason                          string
		state                                string // "running", "waiting:REASON", "terminated:REASON"
		lastExit                             *int32
		restarts                             int32
		ready                                bool
	}
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name    string
		pod     *corev1.Pod
		obs     ObservedPod
		waiting map[string]Waiting
		reasons map[string]Waiting
		probes  ProbeResults
		want    want
	}{
		{
			name: "no sandbox yet: Pending, ContainerCreating",
			pod:  testPod("a"),
			want: want{phase: corev1.PodPending, sandboxReady: "False", initialized: "True", ctrsReady: "False",
				readyReason: ReasonContainersNotReady, state: "waiting:ContainerCreating"},
		},
		{
			name: "running, no readiness probe: Running and Ready with the sandbox IP",
			pod:  testPod("a"),
			obs:  observed(ready, running("a", 0)),
			want: want{phase: corev1.PodRunning, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "True", state: "running", ready: true},
		},
		{
			name: "running, readiness probe without a result: not ready",
			pod: func() *corev1.Pod {
				p := testPod("a")
				p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
				return p
			}(),
			obs: observed(ready, running("a", 0)),
			want: want{phase: corev1.PodRunning, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "False",
				readyReason: ReasonContainersNotReady, state: "running"},
		},
		{
			name: "running, readiness probe succeeded: ready",
			pod: func() *corev1.Pod {
				p := testPod("a")
				p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
				return p
			}(),
			obs:    observed(ready, running("a", 0)),
			probes: ProbeResults{Ready: map[string]bool{"a-0": true}},
			want:   want{phase: corev1.PodRunning, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "True", state: "running", ready: true},
		},
		{
			name: "restarted and running: lastState is the previous exit",
			pod:  testPod("a"),
			obs:  observed(ready, running("a", 1), exited("a", 0, 137, t0)),
			want: want{phase: corev1.PodRunning, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "True",
				state: "running", lastExit: i32(137), restarts: 1, ready: true},
		},
		{
			name:    "in back-off: waiting CrashLoopBackOff, Running phase",
			pod:     testPod("a"),
			obs:     observed(ready, exited("a", 2, 1, t0)),
			waiting: map[string]Waiting{"a": {Reason: ReasonCrashLoopBackOff}},
			want: want{phase: corev1.PodRunning, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "False",
				readyReason: ReasonContainersNotReady, state: "waiting:CrashLoopBackOff", lastExit: i32(1), restarts: 2},
		},
		{
			name:    "image pull failed: waiting ErrImagePull, Pending",
			pod:     testPod("a"),
			obs:     observed(ready),
			reasons: map[string]Waiting{"a": {Reason: ReasonErrImagePull, Message: "not found"}},
			want: want{phase: corev1.PodPending, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "False",
				readyReason: ReasonContainersNotReady, state: "waiting:ErrImagePull"},
		},
		{
			name:    "start failed: waiting RunContainerError",
			pod:     testPod("a"),
			obs:     observed(ready, ObservedContainer{ID: "a-0", SandboxID: "sb", Name: "a", State: StateCreated, ImageRef: "sha256:abc"}),
			reasons: map[string]Waiting{"a": {Reason: ReasonRunContainerError, Message: "exec: not found"}},
			want: want{phase: corev1.PodPending, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "False",
				readyReason: ReasonContainersNotReady, state: "waiting:RunContainerError"},
		},
		{
			name: "init container running: Pending, not initialized, app container PodInitializing",
			pod:  withInit(testPod("a"), "i"),
			obs:  observed(ready, running("i", 0)),
			want: want{phase: corev1.PodPending, podIP: "10.0.0.5", sandboxReady: "True", initialized: "False", ctrsReady: "False",
				readyReason: ReasonContainersNotReady, state: "waiting:PodInitializing"},
		},
		{
			name: "Never, exited 0: Succeeded, Completed, not ready (PodCompleted)",
			pod:  withPolicy(testPod("a"), corev1.RestartPolicyNever),
			obs:  observed([]ObservedSandbox{{ID: "sb", IPs: nil}}, exited("a", 0, 0, t0)),
			want: want{phase: corev1.PodSucceeded, sandboxReady: "False", initialized: "True", ctrsReady: "False",
				readyReason: ReasonPodCompleted, state: "terminated:Completed"},
		},
		{
			name: "Never, exited 3: Failed, Error",
			pod:  withPolicy(testPod("a"), corev1.RestartPolicyNever),
			obs:  observed(ready, exited("a", 0, 3, t0)),
			want: want{phase: corev1.PodFailed, podIP: "10.0.0.5", sandboxReady: "True", initialized: "True", ctrsReady: "False",
				readyReason: ReasonPodCompleted, state: "terminated:Error"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := ComputePodStatus(StatusInput{
				PodInput:    PodInput{Pod: tc.pod, Observed: tc.obs, Reasons: tc.reasons, Probes: tc.probes, Now: t0},
				Waiting:     tc.waiting,
				RuntimeName: "rt",
				HostIPs:     []string{"192.0.2.1"},
			})
			w := tc.want
			if st.Phase != w.phase || st.PodIP != w.podIP || st.HostIP != "192.0.2.1" {
				t.Errorf("phase %q podIP %q hostIP %q; want %q %q", st.Phase, st.PodIP, st.HostIP, w.phase, w.podIP)
			}
			cs := conditions(st)
			if cs[corev1.PodReadyToStartContainers].Status != w.sandboxReady || cs[corev1.PodInitialized].Status != w.initialized ||
				cs[corev1.ContainersReady].Status != w.ctrsReady || cs[corev1.PodReady].Status != w.ctrsReady {
				t.Errorf("conditions %+v", st.Conditions)
			}
			if cs[corev1.PodReady].Reason != w.readyReason {
				t.Errorf("Ready reason %q, want %q", cs[corev1.PodReady].Reason, w.readyReason)
			}
			if len(st.ContainerStatuses) != 1 {
				t.Fatalf("container statuses %+v", st.ContainerStatuses)
			}
			c := st.ContainerStatuses[0]
			got := ""
			switch {
			case c.State.Running != nil:
				got = "running"
			case c.State.Waiting != nil:
				got = "waiting:" + c.State.Waiting.Reason
			case c.State.Terminated != nil:
				got = "terminated:" + c.State.Terminated.Reason
			}
			if got != w.state {
				t.Errorf("state %s, want %s", got, w.state)
			}
			if lt := c.LastTerminationState.Terminated; (lt == nil) != (w.lastExit == nil) || (lt != nil && lt.ExitCode != *w.lastExit) {
				t.Errorf("lastState %+v, want exit %v", c.LastTerminationState, w.lastExit)
			}
			if c.RestartCount != w.restarts || c.Ready != w.ready {
				t.Errorf("restartCount %d ready %v; want %d %v", c.RestartCount, c.Ready, w.restarts, w.ready)
			}
			if c.Image != "img" || (got != "waiting:ContainerCreating" && got != "waiting:PodInitializing" && got != "waiting:ErrImagePull" && (c.ContainerID == "" || c.ImageID != "sha256:abc")) {
				t.Errorf("image %q imageID %q containerID %q", c.Image, c.ImageID, c.ContainerID)
			}
			if st.StartTime == nil {
				t.Error("no startTime")
			}
		})
	}
}

func TestComputePodStatusKeepsTransitionTimesAndOthersConditions(t *testing.T) {
	pod := testPod("a")
	before := metav1.NewTime(t0.Add(-time.Hour))
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: before},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: before},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: before},
	}
	st := ComputePodStatus(StatusInput{PodInput: PodInput{Pod: pod, Observed: observed([]ObservedSandbox{sandbox()}, running("a", 0)), Now: t0}, RuntimeName: "rt"})
	cs := conditions(st)
	if !cs[corev1.PodScheduled].LastTransitionTime.Time.Equal(before.Time) {
		t.Error("PodScheduled was not kept")
	}
	if !cs[corev1.PodReady].LastTransitionTime.Time.Equal(before.Time) {
		t.Errorf("Ready stayed True but its transition time moved to %v", cs[corev1.PodReady].LastTransitionTime)
	}
	if cs[corev1.ContainersReady].LastTransitionTime.Time.Equal(before.Time) {
		t.Error("ContainersReady turned True but kept its old transition time")
	}
	// Recomputing from the written status changes nothing.
	pod.Status = st
	again := ComputePodStatus(StatusInput{PodInput: PodInput{Pod: pod, Observed: observed([]ObservedSandbox{sandbox()}, running("a", 0)), Now: t0.Add(time.Minute)}, RuntimeName: "rt"})
	if StatusChanged(st, again) {
		t.Errorf("status changed with nothing new:\n%+v\n%+v", st, again)
	}
}

func TestComputePodStatusHostNetwork(t *testing.T) {
	pod := testPod("a")
	pod.Spec.HostNetwork = true
	st := ComputePodStatus(StatusInput{PodInput: PodInput{Pod: pod, Observed: observed([]ObservedSandbox{{ID: "sb", Ready: true}}, running("a", 0)), Now: t0},
		RuntimeName: "rt", HostIPs: []string{"192.0.2.1"}})
	if st.PodIP != "192.0.2.1" || len(st.PodIPs) != 1 {
		t.Errorf("host-network pod IPs %q %v", st.PodIP, st.PodIPs)
	}
}

func TestComputePodStatusActiveDeadline(t *testing.T) {
	pod := withDeadline(testPod("a"), t0.Add(-time.Minute), 30)
	st := ComputePodStatus(StatusInput{PodInput: PodInput{Pod: pod, Observed: observed([]ObservedSandbox{sandbox()}, running("a", 0)), Now: t0}, RuntimeName: "rt"})
	if st.Phase != corev1.PodFailed || st.Reason != ReasonDeadlineExceeded || st.Message == "" {
		t.Errorf("phase %q reason %q message %q", st.Phase, st.Reason, st.Message)
	}
	pod = withDeadline(testPod("a"), t0.Add(-time.Minute), 90)
	if st := ComputePodStatus(StatusInput{PodInput: PodInput{Pod: pod, Observed: observed([]ObservedSandbox{sandbox()}, running("a", 0)), Now: t0}, RuntimeName: "rt"}); st.Phase != corev1.PodRunning {
		t.Errorf("before the deadline: phase %q", st.Phase)
	}
}

func TestComputePodStatusSidecarsAndInitContainers(t *testing.T) {
	pod := withSidecar(withInit(testPod("a"), "setup"), "side")
	pod.Spec.InitContainers[1].ReadinessProbe = &corev1.Probe{}
	obs := observed([]ObservedSandbox{sandbox()}, exited("setup", 0, 0, t0), running("side", 0), running("a", 0))
	in := StatusInput{PodInput: PodInput{Pod: pod, Observed: obs, Now: t0}, RuntimeName: "rt"}
	st := ComputePodStatus(in)
	if len(st.InitContainerStatuses) != 2 {
		t.Fatalf("init statuses %+v", st.InitContainerStatuses)
	}
	setup, side := st.InitContainerStatuses[0], st.InitContainerStatuses[1]
	if setup.State.Terminated == nil || !setup.Ready {
		t.Errorf("completed init container: %+v", setup)
	}
	if side.State.Running == nil || side.Ready {
		t.Errorf("sidecar before its readiness probe passed: %+v", side)
	}
	cs := conditions(st)
	if cs[corev1.PodInitialized].Status != corev1.ConditionTrue || cs[corev1.ContainersReady].Status != corev1.ConditionFalse || st.Phase != corev1.PodRunning {
		t.Errorf("phase %s conditions %+v", st.Phase, st.Conditions)
	}
	in.Probes = ProbeResults{Ready: map[string]bool{"side-0": true}}
	if st := ComputePodStatus(in); conditions(st)[corev1.PodReady].Status != corev1.ConditionTrue {
		t.Errorf("ready sidecar and app, pod not Ready: %+v", st.Conditions)
	}
}

func TestComputePodStatusTerminalOnlyOnceNothingRuns(t *testing.T) {
	pod := withPolicy(withSidecar(testPod("a"), "side"), corev1.RestartPolicyNever)
	in := StatusInput{PodInput: PodInput{Pod: pod, Observed: observed([]ObservedSandbox{sandbox()}, running("side", 1), exited("a", 0, 0, t0)), Now: t0}, RuntimeName: "rt"}
	if st := ComputePodStatus(in); st.Phase != corev1.PodRunning {
		t.Errorf("app done, sidecar still running: phase %s, want Running until it stops", st.Phase)
	}
	in.Observed = observed([]ObservedSandbox{sandbox()}, exited("side", 1, 137, t0), exited("a", 0, 0, t0))
	if st := ComputePodStatus(in); st.Phase != corev1.PodSucceeded {
		t.Errorf("everything stopped: phase %s, want Succeeded", st.Phase)
	}
}
