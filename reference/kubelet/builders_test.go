package kubelet

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Builders of test objects, shared by this package's tests.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testPod is a pod bound to node "n1" with app containers named as given
// (image "img"), restartPolicy Always.
func testPod(containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       corev1.PodSpec{NodeName: "n1", RestartPolicy: corev1.RestartPolicyAlways},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "img"})
	}
	return p
}

func withInit(p *corev1.Pod, names ...string) *corev1.Pod {
	for _, n := range names {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "img"})
	}
	return p
}

func withPolicy(p *corev1.Pod, rp corev1.RestartPolicy) *corev1.Pod {
	p.Spec.RestartPolicy = rp
	return p
}

func deleting(p *corev1.Pod, at time.Time, grace int64) *corev1.Pod {
	ts := metav1.NewTime(at)
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
	return p
}

// sandbox is a ready sandbox "sb" (attempt 0) with IP 10.0.0.5.
func sandbox() ObservedSandbox {
	return ObservedSandbox{ID: "sb", Ready: true, CreatedAt: t0, IPs: []string{"10.0.0.5"}}
}

func running(name string, attempt uint32) ObservedContainer {
	return ObservedContainer{ID: name + "-" + string(rune('0'+attempt)), SandboxID: "sb", Name: name, Attempt: attempt,
		State: StateRunning, CreatedAt: t0.Add(time.Duration(attempt) * time.Second), StartedAt: t0.Add(time.Duration(attempt) * time.Second), ImageRef: "sha256:abc"}
}

func exited(name string, attempt uint32, code int32, finished time.Time) ObservedContainer {
	c := running(name, attempt)
	c.State, c.ExitCode, c.FinishedAt = StateExited, code, finished
	return c
}

func observed(sbs []ObservedSandbox, cs ...ObservedContainer) ObservedPod {
	o := ObservedPod{Sandboxes: sbs, Containers: cs}
	o.Sort()
	return o
}

func withDeadline(p *corev1.Pod, started time.Time, seconds int64) *corev1.Pod {
	st := metav1.NewTime(started)
	p.Status.StartTime, p.Spec.ActiveDeadlineSeconds = &st, &seconds
	return p
}

// withSidecar adds an init container with restartPolicy Always.
func withSidecar(p *corev1.Pod, name string) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: name, Image: "img", RestartPolicy: &always})
	return p
}
