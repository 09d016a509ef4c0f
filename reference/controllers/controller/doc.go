// Package controller holds what kubelab's controllers share, in the spirit
// of upstream's pkg/controller: the Context a controller is built from
// (clientset, the manager's one shared informer factory, logger, workqueue
// metrics), the rate-limited workqueue and its worker loop, expectations
// (so a controller whose informer trails its own writes never acts twice),
// controllerRef ownership decisions (adopt, release, ignore) and the pod
// predicates (active, ready, available) the workload controllers use.
//
// Pure decisions (Claim, IsPodAvailable, Expectations' arithmetic) take all
// their inputs as arguments; the functions that talk to the API server
// (Adopt, Release, RunWorkers) are thin and named as such.
package controller
