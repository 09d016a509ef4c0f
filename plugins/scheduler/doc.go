// Package scheduler is the home of kubelab's scheduler policy plugins, one
// subpackage per plugin (or per cohesive group), each exporting
// Plugin() spec.SchedulerPlugin. The upstream-equivalent plugins keep the
// kube-scheduler's names, semantics and failure reasons (NodeResourcesFit,
// TaintToleration, PodTopologySpread, InterPodAffinity, DefaultPreemption,
// …); package baselines holds research baselines (BinPacking, Spread,
// Random, FirstFit); package profiles assembles them into spec.Profiles,
// including the default profile matching the kube-scheduler's defaults.
package scheduler
