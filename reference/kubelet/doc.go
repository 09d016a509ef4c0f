// Package kubelet is kubelab's node agent: it registers a Node, keeps its
// Lease and status fresh, and runs the pods bound to it on a container
// runtime that it reaches only through CRI (Runtime, a subset of
// spec.Runtime). It never imports a runtime plugin: the caller hands one
// in (kubelab node picks it from the registry).
//
// The package is built like upstream's kuberuntime manager, as pure
// decisions with I/O at the edges:
//
//   - ComputePodActions decides, from a pod's spec, what the runtime says
//     about it (ObservedPod), the crash-loop back-off state, the probe
//     verdicts and the time, what to do next (PodActions: kill the pod,
//     create a sandbox, start or kill containers, remove sandboxes, finish
//     the deletion) — as data, without calling anything;
//   - ComputePodStatus derives the pod's status (phase, conditions,
//     container statuses, IPs) from the same inputs; ComputeNodeStatus the
//     Node's from facts about the machine and the runtime; Admit whether a
//     new pod fits; SandboxConfig, ContainerConfig, ResolveEnv,
//     ServiceEnv, VolumeFiles and ContainerMounts build what the runtime
//     is given; ProbeCounter applies probe thresholds;
//   - the executor (executor.go) applies PodActions through Runtime; the
//     Kubelet (kubelet.go, worker.go) wires a pod informer
//     (spec.nodeName=N), static pods from a directory, a relist of the
//     runtime every second (upstream's PLEG), one worker per pod, probe
//     workers, volumes, events, the status writer, the heartbeats
//     (heartbeat.go) and the kubelet API (server.go).
//
// A Kubelet is started with Run and stops when its context ends; stopping
// it leaves containers running, and a new Kubelet over the same runtime
// adopts them. See README.md for what is not there yet.
package kubelet
