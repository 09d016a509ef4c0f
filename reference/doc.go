// Package reference is the home of kubelab's reference components — API
// server, controller manager, scheduler, kubelet, proxy loop, node and pod
// networking, and the cluster wiring — each in its own subpackage. They
// depend on the contracts in package spec only, never on a concrete plugin:
// plugins reach them through a spec.Registry.
//
// The components land one issue at a time; see README.md for what exists.
package reference
