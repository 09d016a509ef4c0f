package kubelet

import (
	"context"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// retryAfterError is how soon a sync that failed is retried.
const retryAfterError = 2 * time.Second

// podWorker syncs one pod: it observes the runtime, decides with
// ComputePodActions, applies the actions, and writes the status. All its
// fields except kickc are owned by its goroutine.
type podWorker struct {
	k               *Kubelet
	uid             types.UID
	namespace, name string
	kickc           chan struct{}

	// admitted is set once the pod passed admission (or was found
	// running); read by other workers' admission.
	admitted atomic.Bool

	backoff map[string]BackoffEntry // crash-loop back-off by container name; image pulls by "image/" + name
	reasons map[string]Waiting      // last start failure, by container name
}

// run syncs on each kick and when a back-off or retry is due, until the
// pod is gone from both the API and the runtime, or ctx ends.
func (w *podWorker) run(ctx context.Context) {
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kickc:
		case <-timer:
		}
		if ctx.Err() != nil {
			return
		}
		timer = nil
		for range 10 { // sync again at once while it makes progress
			again, retry, done := w.sync(ctx)
			if done {
				if w.k.workerDone(w) {
					return
				}
				break
			}
			if !retry.IsZero() {
				timer = time.After(max(time.Until(retry), 10*time.Millisecond))
			}
			if !again || ctx.Err() != nil {
				break
			}
		}
	}
}

// pod returns the pod from the informer's cache, or nil when the API has
// no pod of this UID any more.
//
// A static pod comes from the manifest, with the status of its mirror pod
// (the status last written).
func (w *podWorker) pod() *corev1.Pod {
	if sp := w.k.staticPod(w.uid); sp != nil {
		p := sp.DeepCopy()
		if m := w.k.mirror(p.Namespace, p.Name, p.UID); m != nil {
			p.Status = m.Status
		}
		return p
	}
	if w.name == "" {
		return nil
	}
	p, err := w.k.pods.Pods(w.namespace).Get(w.name)
	if err != nil || p.UID != w.uid || mirrorOf(p) != "" {
		return nil
	}
	return p
}

// sync is one round. again: actions were applied, sync again now; retry:
// when to sync at the latest; done: nothing of the pod is left.
func (w *podWorker) sync(ctx context.Context) (again bool, retry time.Time, done bool) {
	k := w.k
	pod := w.pod()
	obs, err := k.observe(ctx, w.uid)
	if err != nil {
		k.log.Warn("observe pod", "pod", w.namespace+"/"+w.name, "err", err)
		return false, k.now().Add(retryAfterError), false
	}
	orphan := pod == nil
	static := !orphan && pod.Annotations[AnnotationConfigSource] == "file"
	if orphan {
		// A static pod whose manifest went: its mirror goes too.
		k.deleteMirror(ctx, w.namespace, w.name, w.uid)
		if len(obs.Sandboxes) == 0 && len(obs.Containers) == 0 {
			if err := k.cleanUpPodDir(w.uid); err != nil {
				k.log.Warn("pod directory", "pod", w.namespace+"/"+w.name, "err", err)
				return false, k.now().Add(retryAfterError), false
			}
			return false, time.Time{}, true
		}
		// The API has no such pod (deleted for good, or force-deleted):
		// stop and remove what is left, with the minimum grace.
		now := metav1.NewTime(k.now())
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.namespace, UID: w.uid,
			DeletionTimestamp: &now, DeletionGracePeriodSeconds: ptrTo(int64(0))}}
	}
	if static {
		k.syncMirror(ctx, pod)
		w.admitted.Store(true) // static pods are not admitted against API pods
	}
	if !orphan && !w.admitted.Load() {
		if rejected := w.admit(ctx, pod, obs); rejected {
			return false, time.Time{}, false
		}
	}
	in := PodInput{Pod: pod, Observed: obs, Backoff: w.backoff, Policy: k.cfg.Backoff, Reasons: w.reasons,
		Probes: k.prober.results(w.uid), Now: k.now()}
	acts := ComputePodActions(in)
	if !orphan {
		for name, wt := range acts.Waiting {
			if wt.Reason == ReasonCrashLoopBackOff {
				k.event(pod, name, corev1.EventTypeWarning, EventBackOff, "Back-off restarting failed container %s in pod %s", name, pod.Namespace+"/"+pod.Name)
			}
		}
	}
	failed := w.execute(ctx, pod, obs, acts)
	if !acts.Empty() {
		if obs, err = k.observe(ctx, w.uid); err != nil {
			return true, k.now().Add(retryAfterError), false
		}
		in.Observed = obs
	}
	if orphan {
		k.prober.update(ctx, w.uid, nil, in.Observed)
	} else {
		k.prober.update(ctx, w.uid, pod, in.Observed)
	}
	retry = acts.RetryAt
	if failed {
		retry = k.now().Add(retryAfterError)
	}
	if orphan {
		return !acts.Empty(), retry, false
	}
	st := ComputePodStatus(StatusInput{PodInput: in, Waiting: acts.Waiting, RuntimeName: k.runtimeName, HostIPs: k.hostIPs()})
	if StatusChanged(pod.Status, st) {
		if err := w.writeStatus(ctx, pod, st); err != nil && ctx.Err() == nil {
			k.log.Warn("pod status", "pod", w.namespace+"/"+w.name, "err", err)
			retry = k.now().Add(retryAfterError)
		}
	}
	if acts.FinishDelete {
		if err := k.cleanUpPodDir(w.uid); err != nil {
			k.log.Warn("pod directory", "pod", w.namespace+"/"+w.name, "err", err)
			return false, k.now().Add(retryAfterError), false
		}
		if err := w.finishDelete(ctx, pod); err != nil {
			k.log.Warn("finish pod deletion", "pod", w.namespace+"/"+w.name, "err", err)
			return false, k.now().Add(retryAfterError), false
		}
		return false, time.Time{}, true
	}
	if _, done := TerminalPhase(pod, in.Observed); !done && pod.DeletionTimestamp == nil {
		// Refresh configMap, secret and downwardAPI volumes of a running
		// pod, and come back after SyncFrequency, as upstream's periodic
		// pod sync.
		if len(pod.Spec.Volumes) > 0 && anyRunning(in.Observed) && !acts.CreateSandbox {
			var ips []string
			if sb := in.Observed.Sandbox(); sb != nil {
				ips = sb.IPs
			}
			if _, err := k.setUpVolumes(ctx, pod, ips); err != nil && ctx.Err() == nil {
				k.log.Warn("volumes", "pod", w.namespace+"/"+w.name, "err", err)
			}
		}
		if next := k.now().Add(k.cfg.SyncFrequency); retry.IsZero() || next.Before(retry) {
			retry = next
		}
	}
	return !acts.Empty() && !failed, retry, false
}

// writeStatus writes st through the status subresource, over the cached
// pod (a conflict is retried on the next sync, which the informer's update
// triggers).
//
// A static pod's status goes to its mirror pod, when there is one.
func (w *podWorker) writeStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	p := pod.DeepCopy()
	if pod.Annotations[AnnotationConfigSource] == "file" {
		m := w.k.mirror(pod.Namespace, pod.Name, pod.UID)
		if m == nil {
			return nil
		}
		p = m.DeepCopy()
	}
	p.Status = st
	_, err := w.k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// finishDelete deletes the pod for good once nothing of it runs, as
// upstream's status manager does: grace period 0, preconditioned on the
// UID so that a new pod of the same name is never deleted.
func (w *podWorker) finishDelete(ctx context.Context, pod *corev1.Pod) error {
	err := w.k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptrTo(int64(0)),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// admit runs admission for a pod seen for the first time, unless it
// already runs here (a restarted kubelet adopts it), is terminal or is
// being deleted. A rejected pod gets status Failed with the reason and is
// never run; rejected reports that.
func (w *podWorker) admit(ctx context.Context, pod *corev1.Pod, obs ObservedPod) (rejected bool) {
	k := w.k
	_, terminal := TerminalPhase(pod, obs)
	node := k.node.Load()
	if len(obs.Sandboxes) > 0 || len(obs.Containers) > 0 || pod.DeletionTimestamp != nil || node == nil {
		w.admitted.Store(!terminal)
		return false
	}
	if terminal {
		return true // rejected before, or done: nothing to run
	}
	a := Admit(pod, k.activePods(pod), node)
	if a.Admit {
		w.admitted.Store(true)
		return false
	}
	k.log.Info("pod rejected", "pod", pod.Namespace+"/"+pod.Name, "reason", a.Reason)
	st := corev1.PodStatus{Phase: corev1.PodFailed, Reason: a.Reason, Message: a.Message, Conditions: pod.Status.Conditions}
	if err := w.writeStatus(ctx, pod, st); err != nil && ctx.Err() == nil {
		k.log.Warn("pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	return true
}
