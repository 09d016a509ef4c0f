// Package spec holds kubelab's contracts: the Go interfaces, value types and
// sentinel errors of the four replaceable parts of a cluster — the store
// (etcd's role), the scheduler policy, the container runtime (CRI) and the
// service proxy — and the explicit plugin Registry through which the kubelab
// command and the conformance suites find plugins by name.
//
// spec imports no other kubelab package. A plugin implements one contract and
// is added to a Registry by the program's main function; nothing registers
// itself from an init function.
//
// Errors: every operation reports failures by wrapping one of the sentinel
// errors of this package with the identifiers that matter, for example
//
//	fmt.Errorf("key %q: %w", key, spec.ErrNotFound)
//
// so callers test them with errors.Is.
package spec
