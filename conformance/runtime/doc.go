// Package runtime is the conformance suite of the container runtime
// contract (spec.Runtime, which is CRI's RuntimeService and
// ImageManagerService): Ginkgo v2 specs that validate any CRI runtime —
// kubelab's process runtime in-process or over its gRPC socket, containerd,
// or a runtime of yours behind a CRI endpoint — one capability at a time.
//
// Specs judge a runtime only through CRI calls and what CRI promises is
// observable: what a container's process sees (through ExecSync: its
// command line, environment, working directory, hostname, network
// namespace, cgroups), what it writes to its log file or to a host
// directory mounted into it, and, for the network namespace's release, the
// host's mount tables and /proc. The suite passes on containerd unchanged,
// which shows it tests CRI's semantics, not kubelab's.
//
// A program declares the suite with Register and runs it with Ginkgo's
// RunSpecs. The runtime is started (Target.Start) when the first spec needs
// it and stopped after the last. Every spec runs its own sandboxes, in the
// namespace SandboxNamespace, with the kubelet's namespace modes (a PID
// namespace per container), and removes them when it ends; stopping the
// target removes any left. The runtime must hold the test images
// (BusyboxImage, WorkloadImage; `make images` builds them into
// _out/images): PluginTarget and ContainerdTarget import them, an endpoint
// of yours must have them imported.
//
// Every spec carries the area label "runtime" and exactly one capability
// label (see Capabilities). All capabilities are mandatory.
// conformance/conformance.yaml lists every spec with what it requires.
//
// Running it (as root):
//
//	go test ./conformance/runtime/          # process runtime, broken runtimes caught, leak checks
//	KUBELAB_RUNTIME_SUITE_TARGET=containerd go test -run '^TestSuite$' ./conformance/runtime/
//	kubelab conform --suite runtime        # process, process-grpc, containerd
//	kubelab conform --suite runtime --cri-endpoint unix:///run/containerd/containerd.sock
//
// The package's tests prove the suite: TestSuite runs it against the
// process runtime (or the target named by KUBELAB_RUNTIME_SUITE_TARGET),
// TestBrokenRuntimesAreCaught runs it against every broken runtime of
// fakes/brokenruntime and checks that each fails exactly the capability
// meant to catch it, TestNoLeaks checks that a whole run leaves no mount,
// network namespace, cgroup, link or process behind, and
// TestNoLeaksAfterCrash that a crashed run's leftovers are swept by the
// next run (SweepStale).
//
// A spec is written so that its rule alone decides its verdict: flipping the
// rule (one operator, term, field or bound) flips it, and a time-shaped rule
// is bounded on both sides. A new spec comes with the broken plugin of
// fakes/brokenruntime that its capability must catch.
package runtime
