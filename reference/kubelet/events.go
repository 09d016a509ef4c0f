package kubelet

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Event reasons the kubelet records, upstream's.
const (
	// EventPulling: an image pull starts.
	EventPulling = "Pulling"
	// EventPulled: the image is there (pulled or already present).
	EventPulled = "Pulled"
	// EventCreated: a container was created.
	EventCreated = "Created"
	// EventStarted: a container was started.
	EventStarted = "Started"
	// EventKilling: a container is being stopped.
	EventKilling = "Killing"
	// EventFailed: pulling, creating or starting a container failed.
	EventFailed = "Failed"
	// EventBackOff: a restart or a pull waits for its back-off.
	EventBackOff = "BackOff"
	// EventUnhealthy: a probe failed.
	EventUnhealthy = "Unhealthy"
	// EventFailedMount: a volume could not be set up.
	EventFailedMount = "FailedMount"
	// EventFailedCreatePodSandBox: the sandbox could not be created.
	EventFailedCreatePodSandBox = "FailedCreatePodSandBox"
	// EventFailedPostStartHook: the postStart hook failed; the container
	// is killed.
	EventFailedPostStartHook = "FailedPostStartHook"
	// EventFailedPreStopHook: the preStop hook failed.
	EventFailedPreStopHook = "FailedPreStopHook"
	// EventStarting: the kubelet started (on the Node).
	EventStarting = "Starting"
)

// newRecorder records events through the API as component "kubelet" on
// host nodeName; the returned stop flushes and ends the broadcaster.
func newRecorder(k *Kubelet) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	r := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: k.cfg.NodeName})
	return r, b.Shutdown
}

// containerRef is the object reference of container name in pod, with the
// field path upstream's events carry.
func containerRef(pod *corev1.Pod, name string) *corev1.ObjectReference {
	path := fmt.Sprintf("spec.containers{%s}", name)
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			path = fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, FieldPath: path}
}

// event records an event about pod (container "" for the pod itself).
func (k *Kubelet) event(pod *corev1.Pod, container, eventType, reason, format string, args ...any) {
	if k.recorder == nil || pod == nil || pod.Name == "" {
		return
	}
	if container == "" {
		k.recorder.Eventf(pod, eventType, reason, format, args...)
		return
	}
	k.recorder.Eventf(containerRef(pod, container), eventType, reason, format, args...)
}
