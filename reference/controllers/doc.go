// Package controllers is kubelab's controller manager (the
// kube-controller-manager's role): it selects controllers by upstream's
// names (--controllers "*", "foo", "-foo"), wins a leader election on the
// Lease kube-system/kube-controller-manager (on by default, as upstream),
// builds every enabled controller over one shared client-go informer
// factory, and serves /healthz, /readyz and /metrics (client-go's
// workqueue_* series under upstream's names).
//
// Each controller is its own package under reference/controllers/<name>,
// with a pure decision core table-tested on its own and thin client-go
// edges (informers, a rate-limited workqueue, retries with backoff);
// reference/controllers/controller holds what they share. Builtin lists
// them. The controllers talk to the API server only, so they run against
// kubelab's API server and a real kube-apiserver alike. README.md says
// which controllers exist and which do not yet.
package controllers
