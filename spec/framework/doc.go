// Package framework runs a scheduler profile's plugins: it is the one
// scheduling cycle of kubelab, used by the reference scheduler
// (reference/scheduler), the plugins' unit tests, and anything that replays
// scheduling decisions (benchmarks, a simulator).
//
// How a profile's plugins are run — which extension points in which order,
// what Skip means, how scores are normalized, weighted and summed, how ties
// are broken, which nodes are looked at — is part of the scheduler policy
// contract in package spec, just as the plugin interfaces are: a plugin
// behaves the same in its tests and in production only if both run it by
// the same rules. Those rules live here, beside the contract, and nowhere
// else.
//
// Schedule is a function of its inputs: a Framework (one profile's
// plugins), a spec.Snapshot, the pod, and Inputs carrying everything that
// would otherwise be hidden state — the round-robin start index and the
// percentage of nodes to look at, the random source that breaks ties
// between equally scored nodes, the pods nominated to nodes by earlier
// preemptions. Given equal inputs (and deterministic plugins) it returns
// equal Results, whatever its parallelism. It reads no clock unless an
// Observer asks for durations and does no I/O of its own; the only effects
// it may cause are those of the Extenders hook, which the caller chooses to
// pass in (see Extender).
//
// Its Result holds the decision and why: every evaluated node's verdict
// (feasible, or the status and plugin that rejected it), each Score
// plugin's raw, normalized and weighted score of every feasible node, the
// totals and the chosen node. A pod that fits nowhere gives a *FitError
// alongside the Result; any other error is a scheduler error.
//
// What happens after the decision — Reserve, assuming the pod, PostFilter
// (preemption) when nothing fits, Bind — has effects, so the caller drives
// it; Framework offers RunReserve, RunUnreserve, RunPostFilter and RunBind so
// that those plugins are called with the same guards (a panicking plugin
// gives an Error status naming it) and the same Status conventions.
package framework
