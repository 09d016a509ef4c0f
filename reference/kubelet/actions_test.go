package kubelet

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestComputePodActions(t *testing.T) {
	ready := []ObservedSandbox{sandbox()}
	dead := []ObservedSandbox{{ID: "sb", Attempt: 2, Ready: false}}
	policy := BackoffPolicy{}
	recent := map[string]BackoffEntry{"a": {Delay: 10 * time.Second, LastUpdate: t0.Add(-3 * time.Second)}}
	old := map[string]BackoffEntry{"a": {Delay: 10 * time.Second, LastUpdate: t0.Add(-11 * time.Second)}}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		obs     ObservedPod
		backoff map[string]BackoffEntry
		probes  ProbeResults
		want    PodActions
	}{
		{
			name: "new pod: sandbox and every app container",
			pod:  testPod("a", "b"),
			want: PodActions{CreateSandbox: true, GracePeriod: 30,
				Start: []StartContainer{{Name: "a", Index: 0}, {Name: "b", Index: 1}}},
		},
		{
			name: "new pod with init containers: sandbox and the first init container only",
			pod:  withInit(testPod("a"), "i1", "i2"),
			want: PodActions{CreateSandbox: true, GracePeriod: 30, Start: []StartContainer{{Name: "i1", Init: true}}},
		},
		{
			name: "init container running: wait",
			pod:  withInit(testPod("a"), "i1", "i2"),
			obs:  observed(ready, running("i1", 0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30},
		},
		{
			name: "first init container done: the second starts",
			pod:  withInit(testPod("a"), "i1", "i2"),
			obs:  observed(ready, exited("i1", 0, 0, t0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "i2", Init: true, Index: 1}}},
		},
		{
			name: "init containers done: app containers start",
			pod:  withInit(testPod("a"), "i1"),
			obs:  observed(ready, exited("i1", 0, 0, t0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "a"}}},
		},
		{
			name: "failed init container under OnFailure restarts at once the first time",
			pod:  withPolicy(withInit(testPod("a"), "i1"), corev1.RestartPolicyOnFailure),
			obs:  observed(ready, exited("i1", 0, 1, t0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "i1", Init: true, Attempt: 1, Restart: true}}},
		},
		{
			name: "failed init container under Never fails the pod: its sandbox stops",
			pod:  withPolicy(withInit(testPod("a"), "i1"), corev1.RestartPolicyNever),
			obs:  observed(ready, exited("i1", 0, 1, t0)),
			want: PodActions{KillPod: true, GracePeriod: 30},
		},
		{
			name:    "crashed container within its back-off waits in CrashLoopBackOff",
			pod:     testPod("a"),
			obs:     observed(ready, exited("a", 1, 1, t0.Add(-time.Second))),
			backoff: recent,
			want: PodActions{SandboxID: "sb", GracePeriod: 30, RetryAt: t0.Add(7 * time.Second),
				Waiting: map[string]Waiting{"a": {Reason: ReasonCrashLoopBackOff, Message: "back-off 10s restarting failed container=a pod=p_ns(uid-1)"}}},
		},
		{
			name:    "crashed container past its back-off restarts with the next attempt",
			pod:     testPod("a"),
			obs:     observed(ready, exited("a", 1, 1, t0.Add(-time.Second))),
			backoff: old,
			want:    PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "a", Attempt: 2, Restart: true}}},
		},
		{
			name: "exit 0 under OnFailure: done, the sandbox stops",
			pod:  withPolicy(testPod("a"), corev1.RestartPolicyOnFailure),
			obs:  observed(ready, exited("a", 0, 0, t0)),
			want: PodActions{KillPod: true, GracePeriod: 30},
		},
		{
			name: "exit 0 under Always restarts",
			pod:  testPod("a"),
			obs:  observed(ready, exited("a", 0, 0, t0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "a", Attempt: 1, Restart: true}}},
		},
		{
			name: "one of two containers exited under Never: the other keeps running",
			pod:  withPolicy(testPod("a", "b"), corev1.RestartPolicyNever),
			obs:  observed(ready, exited("a", 0, 1, t0), running("b", 0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30},
		},
		{
			name:   "failed liveness probe kills the container",
			pod:    testPod("a"),
			obs:    observed(ready, running("a", 0)),
			probes: ProbeResults{LivenessFailed: map[string]bool{"a-0": true}},
			want: PodActions{SandboxID: "sb", GracePeriod: 30,
				KillContainers: []KillContainer{{ID: "a-0", Name: "a", Reason: "Container a failed liveness probe, will be restarted"}}},
		},
		{
			name: "dead sandbox under Always: a new one, attempts continue",
			pod:  testPod("a"),
			obs:  observed(dead, ObservedContainer{ID: "a-3", SandboxID: "sb", Name: "a", Attempt: 3, State: StateExited}),
			want: PodActions{CreateSandbox: true, Attempt: 3, GracePeriod: 30, Start: []StartContainer{{Name: "a", Attempt: 4, Restart: true}}},
		},
		{
			name: "dead sandbox with a running container: killed, then a new sandbox",
			pod:  testPod("a"),
			obs:  observed(dead, ObservedContainer{ID: "a-0", SandboxID: "sb", Name: "a", State: StateRunning}),
			want: PodActions{KillPod: true, CreateSandbox: true, Attempt: 3, GracePeriod: 30, Start: []StartContainer{{Name: "a", Attempt: 1, Restart: true}}},
		},
		{
			name: "dead sandbox under Never after the containers ran: no second sandbox",
			pod:  withPolicy(testPod("a", "b"), corev1.RestartPolicyNever),
			obs:  observed(dead, ObservedContainer{ID: "a-0", SandboxID: "sb", Name: "a", State: StateExited}),
			want: PodActions{GracePeriod: 30},
		},
		{
			name: "created but never started: replaced",
			pod:  testPod("a"),
			obs:  observed(ready, ObservedContainer{ID: "a-0", SandboxID: "sb", Name: "a", State: StateCreated}),
			want: PodActions{SandboxID: "sb", GracePeriod: 30,
				KillContainers: []KillContainer{{ID: "a-0", Name: "a", Reason: "container in state created"}},
				Start:          []StartContainer{{Name: "a", Attempt: 1, Restart: true}}},
		},
		{
			name:    "created but never started, within its back-off: waits",
			pod:     testPod("a"),
			obs:     observed(ready, ObservedContainer{ID: "a-1", SandboxID: "sb", Name: "a", Attempt: 1, State: StateCreated}),
			backoff: recent,
			want: PodActions{SandboxID: "sb", GracePeriod: 30, RetryAt: t0.Add(7 * time.Second),
				KillContainers: []KillContainer{{ID: "a-1", Name: "a", Reason: "container in state created"}},
				Waiting:        map[string]Waiting{"a": {Reason: ReasonCrashLoopBackOff, Message: "back-off 10s restarting failed container=a pod=p_ns(uid-1)"}}},
		},
		{
			name: "old dead instances are removed, the two newest kept",
			pod:  testPod("a"),
			obs:  observed(ready, running("a", 3), exited("a", 2, 1, t0), exited("a", 1, 1, t0), exited("a", 0, 1, t0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, RemoveContainers: []string{"a-1", "a-0"}},
		},
		{
			name: "deleted pod with a running container: killed with the remaining grace",
			pod:  deleting(testPod("a"), t0.Add(20*time.Second), 30),
			obs:  observed(ready, running("a", 0)),
			want: PodActions{KillPod: true, GracePeriod: 20},
		},
		{
			name: "deleted pod past its grace: the minimum grace still comes first",
			pod:  deleting(testPod("a"), t0.Add(-time.Second), 30),
			obs:  observed(ready, running("a", 0)),
			want: PodActions{KillPod: true, GracePeriod: minimumGracePeriod},
		},
		{
			name: "deleted pod, nothing running: sandboxes removed",
			pod:  deleting(testPod("a"), t0.Add(20*time.Second), 30),
			obs:  observed([]ObservedSandbox{{ID: "sb"}}, exited("a", 0, 0, t0)),
			want: PodActions{GracePeriod: 20, RemoveSandboxes: []string{"sb"}},
		},
		{
			name: "deleted pod, nothing left: the deletion is finished",
			pod:  deleting(testPod("a"), t0.Add(20*time.Second), 30),
			want: PodActions{GracePeriod: 20, FinishDelete: true},
		},
		{
			name: "started sidecar lets the next init container run",
			pod:  withInit(withSidecar(testPod("a"), "side"), "i1"),
			obs:  observed(ready, running("side", 0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "i1", Init: true, Index: 1}}},
		},
		{
			name: "sidecar with a startup probe that has not passed holds the rest",
			pod: func() *corev1.Pod {
				p := withSidecar(testPod("a"), "side")
				p.Spec.InitContainers[0].StartupProbe = &corev1.Probe{}
				return p
			}(),
			obs:  observed(ready, running("side", 0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30},
		},
		{
			name: "sidecar that exited before the app containers: restarted first",
			pod:  withPolicy(withSidecar(testPod("a"), "side"), corev1.RestartPolicyNever),
			obs:  observed(ready, exited("side", 0, 0, t0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "side", Init: true, Attempt: 1, Restart: true}}},
		},
		{
			name: "sidecar that exited next to running app containers: restarted, the apps untouched",
			pod:  withPolicy(withSidecar(testPod("a"), "side"), corev1.RestartPolicyNever),
			obs:  observed(ready, exited("side", 0, 1, t0), running("a", 0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, Start: []StartContainer{{Name: "side", Init: true, Attempt: 1, Restart: true}}},
		},
		{
			name: "app containers done under Never: the pod ends, its running sidecar is stopped",
			pod:  withPolicy(withSidecar(testPod("a"), "side"), corev1.RestartPolicyNever),
			obs:  observed(ready, running("side", 0), exited("a", 0, 0, t0)),
			want: PodActions{KillPod: true, GracePeriod: 30},
		},
		{
			name: "past activeDeadlineSeconds: killed",
			pod:  withDeadline(testPod("a"), t0.Add(-time.Minute), 30),
			obs:  observed(ready, running("a", 0)),
			want: PodActions{KillPod: true, GracePeriod: 30},
		},
		{
			name: "before activeDeadlineSeconds: runs, and syncs again at the deadline",
			pod:  withDeadline(testPod("a"), t0.Add(-time.Minute), 90),
			obs:  observed(ready, running("a", 0)),
			want: PodActions{SandboxID: "sb", GracePeriod: 30, RetryAt: t0.Add(30 * time.Second)},
		},
		{
			name: "pod the API has as Succeeded never gets a sandbox again",
			pod: func() *corev1.Pod {
				p := withPolicy(testPod("a"), corev1.RestartPolicyOnFailure)
				p.Status.Phase = corev1.PodSucceeded
				return p
			}(),
			want: PodActions{GracePeriod: 30},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ComputePodActions(PodInput{Pod: tc.pod, Observed: tc.obs, Backoff: tc.backoff, Policy: policy, Probes: tc.probes, Now: t0})
			if tc.want.Waiting == nil {
				tc.want.Waiting = map[string]Waiting{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTerminalPhase(t *testing.T) {
	ready := []ObservedSandbox{sandbox()}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		obs   ObservedPod
		phase corev1.PodPhase
		done  bool
	}{
		{"Always never ends", testPod("a"), observed(ready, exited("a", 0, 0, t0)), "", false},
		{"Never, all exited 0", withPolicy(testPod("a", "b"), corev1.RestartPolicyNever), observed(ready, exited("a", 0, 0, t0), exited("b", 0, 0, t0)), corev1.PodSucceeded, true},
		{"Never, one failed", withPolicy(testPod("a", "b"), corev1.RestartPolicyNever), observed(ready, exited("a", 0, 0, t0), exited("b", 0, 2, t0)), corev1.PodFailed, true},
		{"Never, one still running", withPolicy(testPod("a", "b"), corev1.RestartPolicyNever), observed(ready, exited("a", 0, 0, t0), running("b", 0)), "", false},
		{"OnFailure, a failure restarts", withPolicy(testPod("a"), corev1.RestartPolicyOnFailure), observed(ready, exited("a", 0, 1, t0)), "", false},
		{"Never, init failed", withPolicy(withInit(testPod("a"), "i"), corev1.RestartPolicyNever), observed(ready, exited("i", 0, 1, t0)), corev1.PodFailed, true},
		{"no sandbox yet", withPolicy(testPod("a"), corev1.RestartPolicyNever), ObservedPod{}, "", false},
		{"Never, a sidecar failing does not fail the pod", withPolicy(withSidecar(testPod("a"), "side"), corev1.RestartPolicyNever), observed(ready, exited("side", 0, 1, t0), running("a", 0)), "", false},
		{"Never, app done, sidecar running: Succeeded", withPolicy(withSidecar(testPod("a"), "side"), corev1.RestartPolicyNever), observed(ready, running("side", 0), exited("a", 0, 0, t0)), corev1.PodSucceeded, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phase, done := TerminalPhase(tc.pod, tc.obs)
			if phase != tc.phase || done != tc.done {
				t.Errorf("TerminalPhase = %q, %v; want %q, %v", phase, done, tc.phase, tc.done)
			}
		})
	}
}
