// Package nodee2e holds the end-to-end test of `kubelab node`'s kubelet
// over the process runtime. It is a package of its own because the process
// runtime re-executes the test binary as its container shims, so its
// TestMain must call process.RunInitIfRequested first.
package nodee2e
