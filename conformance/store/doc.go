// Package store is the conformance suite of the store contract (spec.Store):
// Ginkgo v2 specs that validate any store, the reference plugins, third-party
// plugins and a real etcd alike, one capability at a time.
//
// A program declares the suite with Register and then runs it with Ginkgo's
// RunSpecs; Register only declares specs. Every spec opens its own store
// through Target.Open in a fresh data directory (on /dev/shm when present),
// works under a fresh random key prefix, and closes the store when it ends, so
// targets may share one server. The suite never assumes that revisions start
// at 1 or are consecutive.
//
// Every spec carries the area label "store", exactly one capability label
// (see Capabilities), and "Slow" or "Serial" where true. Specs of the optional
// capabilities spec.CapStoreDurable and spec.CapStoreTTL are skipped for a
// target that does not claim them. conformance/conformance.yaml lists every
// spec with the behaviour it requires.
//
// Running it:
//
//	go test ./conformance/store/                  # against memory, every spec, then the broken stores
//	KUBELAB_STORE_SUITE_TARGET=broken-drops-watch-events go test -run '^TestSuite$' ./conformance/store/
//	kubelab conform --suite store --store etcd,etcd-server
//
// The package's tests prove the suite: TestSuite runs it against the memory
// plugin (or the store named by KUBELAB_STORE_SUITE_TARGET), and
// TestBrokenStoresAreCaught runs it against every broken store of
// fakes/brokenstore and checks that each fails on the capability meant to catch
// it, and on no capability it has no business failing.
//
// A spec is written so that its rule alone decides its verdict: flipping the
// rule (one operator, term, field or bound) flips it, and a time-shaped rule
// is bounded on both sides. A new spec comes with the broken plugin of
// fakes/brokenstore that its capability must catch.
package store
