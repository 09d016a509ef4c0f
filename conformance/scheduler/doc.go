// Package scheduler is the scheduler conformance suite: Ginkgo v2 specs
// that judge a scheduler only through the Kubernetes API — the pods and
// nodes it is given and what becomes of them (spec.nodeName, the
// PodScheduled condition, status.nominatedNodeName, deleted victims) —
// never through its logs, metrics or the source of its events. So the same
// specs validate kubelab's scheduler with a built-in profile, kubelab's
// scheduler with an HTTP extender, and any scheduler process someone else
// runs (the upstream kube-scheduler, a research prototype) that serves a
// schedulerName.
//
// Each spec works in a namespace of its own and on nodes of its own: API
// objects marked Ready (no kubelet is needed), labelled and tainted with
// the spec's id, which every pod of the spec selects and tolerates. A
// scheduler that sees every node of a shared cluster therefore cannot put
// one spec's pods on another spec's nodes. Verdicts are computed by the
// suite itself (for example the requests of the pods bound to a node,
// init containers and overhead counted, against its allocatable).
//
// Every spec carries the area label "scheduler" and one capability label
// (see Capabilities); a Target claims capabilities, and the specs of
// unclaimed ones are skipped and reported as such.
//
// A spec is written so that its rule alone decides its verdict: flipping the
// rule (one operator, term, field or bound) flips it, and a time-shaped rule
// is bounded on both sides. A new spec comes with the broken plugin of
// fakes/brokenscheduler that its capability must catch.
package scheduler
