// Package scheduler is kubelab's scheduler: the reference implementation of
// the kube-scheduler's machinery around spec's scheduler policy plugins.
//
// It watches the API with client-go informers (unassigned pods of its
// profiles' scheduler names, assigned pods, nodes, PodDisruptionBudgets),
// keeps pending pods in a scheduling queue (activeQ ordered by the profile's
// QueueSort plugin or by priority then age, a backoffQ with per-pod
// exponential backoff from 1 s to 10 s, and an unschedulable set that
// cluster events — a node added or changed, an assigned pod deleted — move
// back), and schedules one pod at a time on an incrementally updated
// snapshot of its cache:
//
//	PreFilter → Filter (in parallel over nodes, stopping after
//	percentageOfNodesToScore feasible ones, from a round-robin start) →
//	extenders' filter → [PostFilter when no node fits] → PreScore → Score →
//	NormalizeScore → weights + extenders' prioritize → Reserve → assume
//
// The decision itself — PreFilter through the chosen node — is not made
// here: it is spec/framework.Schedule, the one scheduling cycle, called with
// this scheduler's state as its inputs (the round-robin start index, a
// random source for ties, the pods nominated by preemption, the extenders
// as its Extender hook, the metrics as its Observer). Everything around it
// is this package's: the queue, the cache and its snapshot, PostFilter with
// the PodDisruptionBudgets listed from the informer, Reserve, assume and
// binding, events and conditions, metrics, and explanations built from the
// cycle's Result.
//
// Binding is asynchronous: the pod is assumed in the cache and a goroutine
// binds it through pods/binding (or a bind plugin or extender); on failure
// the reservation is undone, the pod forgotten and requeued. A pod that does
// not fit gets a PodScheduled=False condition and a FailedScheduling event
// whose message reads like the kube-scheduler's ("0/5 nodes are available:
// 3 Insufficient cpu, 2 node(s) had untolerated taint {…}.").
//
// Every plugin call is guarded by recover: a panicking plugin fails that
// pod's attempt with a SchedulerError, not the scheduler. Several profiles
// run in one scheduler (one per schedulerName); leader election (a Lease in
// kube-system) lets replicas run; Prometheus metrics with the
// kube-scheduler's names, /healthz and the opt-in explanations
// (/explain/NAMESPACE/NAME) are served on one HTTP endpoint.
//
// Start it in-process with New and Run.
package scheduler
