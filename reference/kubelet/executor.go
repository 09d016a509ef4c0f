package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execute applies acts to pod through the runtime, in PodActions' order,
// recording start failures in w.reasons and restarts in w.backoff. It
// reports whether something failed (the sync is then retried soon).
func (w *podWorker) execute(ctx context.Context, pod *corev1.Pod, obs ObservedPod, acts PodActions) (failed bool) {
	k := w.k
	var mu sync.Mutex // guards failed: kills run concurrently
	fail := func(what string, err error) {
		mu.Lock()
		failed = true
		mu.Unlock()
		if ctx.Err() == nil {
			k.log.Warn(what, "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
	podIP := ""
	if sb := obs.Sandbox(); sb != nil && len(sb.IPs) > 0 {
		podIP = sb.IPs[0]
	}
	if pod.Spec.HostNetwork {
		if ips := k.hostIPs(); len(ips) > 0 {
			podIP = ips[0]
		}
	}
	if acts.KillPod {
		// App containers first, together; then sidecars one by one in
		// reverse order, as upstream stops them.
		var apps []ObservedContainer
		sidecars := map[string]ObservedContainer{}
		for _, c := range obs.Containers {
			if c.State == StateExited {
				continue
			}
			if spec := containerSpec(pod, c.Name); spec != nil && IsSidecar(spec) {
				sidecars[c.Name] = c
				continue
			}
			apps = append(apps, c)
		}
		var wg sync.WaitGroup
		for _, c := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.killContainer(ctx, pod, podIP, c.ID, c.Name, acts.GracePeriod); err != nil {
					fail("stop container", err)
				}
			}()
		}
		wg.Wait()
		for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
			if c, ok := sidecars[pod.Spec.InitContainers[i].Name]; ok {
				if err := w.killContainer(ctx, pod, podIP, c.ID, c.Name, acts.GracePeriod); err != nil {
					fail("stop container", err)
				}
			}
		}
		for _, s := range obs.Sandboxes {
			if s.Ready {
				if err := k.rt.StopPodSandbox(ctx, s.ID); err != nil {
					fail("stop sandbox", err)
				}
			}
		}
	}
	for _, id := range acts.RemoveSandboxes {
		if err := k.rt.RemovePodSandbox(ctx, id); err != nil {
			fail("remove sandbox", err)
		}
	}
	if failed {
		return failed
	}
	sandboxID, attempt := acts.SandboxID, uint32(0)
	if sb := obs.Sandbox(); sb != nil && !acts.CreateSandbox {
		attempt = sb.Attempt
	}
	var sbIPs []string
	if acts.CreateSandbox {
		attempt = acts.Attempt
		cfg := SandboxConfig(pod, attempt, k.sandboxOpts)
		if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
			fail("pod log directory", err)
			return failed
		}
		id, err := k.rt.RunPodSandbox(ctx, cfg, "")
		if err != nil {
			k.event(pod, "", corev1.EventTypeWarning, EventFailedCreatePodSandBox, "Failed to create pod sandbox: %v", err)
			fail("create sandbox", err)
			return failed
		}
		sandboxID = id
	}
	if sandboxID != "" && len(acts.Start) > 0 {
		if st, err := k.rt.PodSandboxStatus(ctx, sandboxID, false); err == nil {
			sbIPs = observedSandbox(st.GetStatus()).IPs
		}
	}
	for _, kc := range acts.KillContainers {
		if err := w.killContainer(ctx, pod, podIP, kc.ID, kc.Name, acts.GracePeriod); err != nil {
			fail("stop container", err)
		}
	}
	if len(acts.Start) > 0 {
		sbCfg := SandboxConfig(pod, attempt, k.sandboxOpts)
		podIPs := sbIPs
		if pod.Spec.HostNetwork {
			podIPs = k.hostIPs()
		}
		dirs, err := k.setUpVolumes(ctx, pod, podIPs)
		if err != nil {
			k.event(pod, "", corev1.EventTypeWarning, EventFailedMount, "%v", err)
			for _, s := range acts.Start {
				w.reasons[s.Name] = Waiting{Reason: ReasonContainerCreating, Message: err.Error()}
			}
			fail("volumes", err)
			return failed
		}
		for _, s := range acts.Start {
			if err := w.startContainer(ctx, pod, sandboxID, sbCfg, podIPs, dirs, s); err != nil {
				fail("start container "+s.Name, err)
			}
		}
	}
	for _, id := range acts.RemoveContainers {
		if err := k.rt.RemoveContainer(ctx, id); err != nil {
			fail("remove container", err)
		}
	}
	return failed
}

// containerSpec finds container name in the pod's spec.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// killContainer runs the container's preStop hook (exec in the
// container, or httpGet from the node to podIP), bounded by the grace
// period, and stops the container with what is left of it.
func (w *podWorker) killContainer(ctx context.Context, pod *corev1.Pod, podIP, id, name string, grace int64) error {
	start := time.Now()
	w.k.event(pod, name, corev1.EventTypeNormal, EventKilling, "Stopping container %s", name)
	if c := containerSpec(pod, name); c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if err := w.runHook(ctx, c, c.Lifecycle.PreStop, id, podIP, time.Duration(grace)*time.Second); err != nil {
			w.k.event(pod, name, corev1.EventTypeWarning, EventFailedPreStopHook, "PreStopHook failed: %v", err)
		}
		grace -= int64(time.Since(start) / time.Second)
		grace = max(grace, minimumGracePeriod)
	}
	return w.k.rt.StopContainer(ctx, id, grace)
}

// runHook runs a lifecycle hook: exec through ExecSync, httpGet from the
// node (as a probe of the same form would), sleep.
func (w *podWorker) runHook(ctx context.Context, c *corev1.Container, h *corev1.LifecycleHandler, id, podIP string, timeout time.Duration) error {
	switch {
	case h.Exec != nil:
		_, _, err := w.k.rt.ExecSync(ctx, id, h.Exec.Command, timeout)
		return err
	case h.HTTPGet != nil:
		return RunProbe(ctx, w.k.rt, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: h.HTTPGet}}, c, id, podIP, timeout)
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(h.Sleep.Seconds)*time.Second, timeout)):
			return nil
		}
	}
	return errors.New("hook has no handler")
}

// startContainer pulls the image as the pull policy says (a failed pull
// backs off as a crash loop does, showing ImagePullBackOff meanwhile), resolves the
// environment and the volume mounts, and creates and starts the container. A failure is recorded
// in w.reasons with upstream's reason.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, sandboxID string, sbCfg *runtimeapi.PodSandboxConfig, podIPs []string, dirs map[string]string, s StartContainer) error {
	k := w.k
	c := containerSpec(pod, s.Name)
	if c == nil {
		return fmt.Errorf("container %q not in the pod spec", s.Name)
	}
	record := func(reason string, err error) error {
		w.reasons[s.Name] = Waiting{Reason: reason, Message: err.Error()}
		if reason == ReasonImagePullBackOff {
			k.event(pod, s.Name, corev1.EventTypeNormal, EventBackOff, "%v", err)
		} else {
			k.event(pod, s.Name, corev1.EventTypeWarning, EventFailed, "Error: %s: %v", reason, err)
		}
		return fmt.Errorf("%s: %w", reason, err)
	}
	pullKey := "image/" + s.Name
	if e, ok := w.backoff[pullKey]; ok {
		if _, wait := k.cfg.Backoff.Wait(e, ok, k.now()); wait {
			return record(ReasonImagePullBackOff, fmt.Errorf("Back-off pulling image %q", c.Image))
		}
	}
	image, reason, err := w.ensureImage(ctx, pod, c, sbCfg)
	if err != nil {
		if reason == ReasonErrImagePull {
			e, ok := w.backoff[pullKey]
			w.backoff[pullKey] = k.cfg.Backoff.Next(e, ok, k.now())
		}
		return record(reason, err)
	}
	delete(w.backoff, pullKey)
	env, err := ResolveEnv(pod, c, EnvContext{PodIPs: podIPs, HostIPs: k.hostIPs(),
		Objects: apiObjects{ctx: ctx, client: k.client}, IsNotFound: apierrors.IsNotFound, Services: k.allServices()})
	if err != nil {
		return record(ReasonCreateContainerConfigError, err)
	}
	mounts, err := ContainerMounts(pod, c, dirs)
	if err != nil {
		return record(ReasonCreateContainerConfigError, err)
	}
	cfg := ContainerConfig(pod, c, s.Init, s.Attempt, image, env)
	cfg.Mounts = mounts
	id, err := k.rt.CreateContainer(ctx, sandboxID, cfg, sbCfg)
	if err != nil {
		return record(ReasonCreateContainerError, err)
	}
	k.event(pod, s.Name, corev1.EventTypeNormal, EventCreated, "Created container: %s", s.Name)
	if s.Restart {
		e, ok := w.backoff[s.Name]
		w.backoff[s.Name] = k.cfg.Backoff.Next(e, ok, k.now())
	}
	if err := k.rt.StartContainer(ctx, id); err != nil {
		return record(ReasonRunContainerError, err)
	}
	k.event(pod, s.Name, corev1.EventTypeNormal, EventStarted, "Started container %s", s.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		// As upstream: the postStart hook runs right after the start; if
		// it fails, the container is killed (and restarted as its policy
		// says).
		podIP := ""
		if len(podIPs) > 0 {
			podIP = podIPs[0]
		}
		if err := w.runHook(ctx, c, c.Lifecycle.PostStart, id, podIP, time.Duration(specGrace(pod))*time.Second); err != nil {
			k.event(pod, s.Name, corev1.EventTypeWarning, EventFailedPostStartHook, "PostStartHook failed: %v", err)
			if kerr := k.rt.StopContainer(ctx, id, minimumGracePeriod); kerr != nil {
				return kerr
			}
			return fmt.Errorf("postStart hook: %w", err)
		}
	}
	delete(w.reasons, s.Name)
	return nil
}

// ensureImage applies the image pull policy (Always; IfNotPresent;
// Never: only a present image) and returns the image reference to create
// the container with, or a failure reason.
func (w *podWorker) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sbCfg *runtimeapi.PodSandboxConfig) (string, string, error) {
	rt := w.k.rt
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
	}
	if policy != corev1.PullAlways {
		st, err := rt.ImageStatus(ctx, spec, false)
		if err != nil && status.Code(err) != codes.NotFound {
			return "", ReasonErrImagePull, err
		}
		// Absent: an empty answer (containerd) or NotFound (spec.Runtime).
		if err == nil && st.GetImage() != nil {
			w.k.event(pod, c.Name, corev1.EventTypeNormal, EventPulled, "Container image %q already present on machine", c.Image)
			return c.Image, "", nil
		}
		if policy == corev1.PullNever {
			return "", ReasonErrImageNeverPull, fmt.Errorf("container image %q is not present with pull policy of Never", c.Image)
		}
	}
	w.k.event(pod, c.Name, corev1.EventTypeNormal, EventPulling, "Pulling image %q", c.Image)
	start := time.Now()
	if _, err := rt.PullImage(ctx, spec, nil, sbCfg); err != nil {
		return "", ReasonErrImagePull, fmt.Errorf("failed to pull image %q: %w", c.Image, err)
	}
	w.k.event(pod, c.Name, corev1.EventTypeNormal, EventPulled, "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
	return c.Image, "", nil
}

// apiObjects reads ConfigMaps and Secrets from the API server.
type apiObjects struct {
	ctx    context.Context
	client kubernetes.Interface
}

// ConfigMap implements Objects.
func (o apiObjects) ConfigMap(namespace, name string) (*corev1.ConfigMap, error) {
	return o.client.CoreV1().ConfigMaps(namespace).Get(o.ctx, name, metav1.GetOptions{})
}

// Secret implements Objects.
func (o apiObjects) Secret(namespace, name string) (*corev1.Secret, error) {
	return o.client.CoreV1().Secrets(namespace).Get(o.ctx, name, metav1.GetOptions{})
}
