// Package kubelet is kubelab's node agent: it registers a Node, keeps its
// Lease and status fresh, and runs the pods bound to it on a container
// runtime that it reaches only through CRI (Runtime, a subset of
// spec.Runtime).
//
// The package is built like upstream's kuberuntime manager, as pure
// decisions with I/O at the edges:
//
//   - ComputePodActions decides, from a pod's spec, what the runtime says
//     about it (ObservedPod), the crash-loop back-off state and the time,
//     what to do next (PodActions: create a sandbox, kill the pod, start or
//     kill containers) — as data, without calling anything;
//   - ComputePodStatus derives the pod's status (phase, conditions,
//     container statuses, IPs) from the same inputs;
//   - ComputeNodeStatus derives the Node's status from facts about the
//     machine and the runtime;
//   - an executor (executor.go) applies PodActions through Runtime, and the
//     Kubelet (kubelet.go) wires informers, a relist of the runtime
//     (PLEG-like), per-pod workers, the status writer and the heartbeats.
//
// A Kubelet is started with Run and stops when its context ends; stopping it
// leaves containers running.
package kubelet
