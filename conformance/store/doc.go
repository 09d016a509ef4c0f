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
package store
