// Package scheduler is the home of kubelab's scheduler policy plugins, one
// subpackage per plugin (or per cohesive group), each exporting its
// spec.SchedulerPlugin registry entry. The upstream-equivalent plugins keep
// the kube-scheduler's names, semantics, status codes and failure reasons;
// package profiles assembles them into spec.Profiles and lists them all.
//
//	plugin                           extension points                  args
//	SchedulingGates                  PreFilter (upstream: PreEnqueue)  -
//	PrioritySort                     QueueSort                         -
//	NodeName                         Filter                            -
//	NodeUnschedulable                Filter                            -
//	TaintToleration                  Filter, PreScore, Score           score=false
//	NodeAffinity                     PreFilter, Filter, PreScore, Score score=false
//	NodePorts                        PreFilter, Filter                 -
//	NodeResourcesFit                 PreFilter, Filter, PreScore, Score scoringStrategy=LeastAllocated|MostAllocated, resources=cpu=1,memory=1, ignoredResources, ignoredResourceGroups, score=false
//	NodeResourcesBalancedAllocation  PreScore, Score                   resources=cpu=1,memory=1
//	PodTopologySpread                PreFilter, Filter, PreScore, Score score=false
//	InterPodAffinity                 PreFilter, Filter, PreScore, Score hardPodAffinityWeight=1, score=false
//	DefaultPreemption                PostFilter                        minCandidateNodesPercentage=10, minCandidateNodesAbsolute=100
//	ImageLocality                    PreScore, Score                   -
//	DefaultBinder                    Bind                              -
//	BinPacking, Spread, FirstFit     (PreScore,) Score                 BinPacking: resources
//	Random                           Score                             seed=0
//
// score=false turns a Filter-and-Score plugin into a filter only (its
// PreScore returns Skip); the baseline profiles use it so that their one
// baseline scorer decides alone.
//
// Filter reasons are upstream's, so that the scheduler's aggregated message
// reads like the kube-scheduler's ("0/5 nodes are available: 3 Insufficient
// cpu, 2 node(s) had untolerated taint {dedicated: gpu}."). Resource,
// host-port and anti-affinity rejections are Unschedulable (preemption may
// help); node name, cordon, taint, node affinity, pod affinity, missing
// topology labels and requests larger than the whole node are
// UnschedulableAndUnresolvable.
//
// Every plugin asserts the extension points it implements at compile time.
// Tests build pods, nodes and snapshots with spec/spectest and run plugins
// through internal/schedtest, which runs them by spec/framework's rules (the
// cycle production runs) and fails a test that runs a plugin at an
// extension point it does not implement.
//
// Not implemented: the volume plugins and PodTopologySpread's system
// default constraints (they need Services and controllers, which the
// snapshot does not carry).
package scheduler
