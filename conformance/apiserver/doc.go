// Package apiserver is the conformance suite of the Kubernetes API server:
// Ginkgo v2 specs written only with client-go (typed and dynamic clients,
// informers, leader election), so that they run against kubelab's API server
// over any store plugin and against a real kube-apiserver alike.
//
// A program declares the suite with Register and runs it with Ginkgo's
// RunSpecs. Every spec works in a namespace of its own, created before it and
// deleted after it, so targets may be shared.
//
// Every spec carries the area label "apiserver" and exactly one capability
// label (see Capabilities). conformance/conformance.yaml lists every spec with
// the behaviour it requires.
//
// Running it:
//
//	go test ./conformance/apiserver/                          # against kubelab's API server over the memory store
//	KUBELAB_APISERVER_KUBECONFIG=~/.kube/config go test ./conformance/apiserver/   # against any API server
//	kubelab conform --suite apiserver                        # over every store plugin
//	kubelab conform --suite apiserver --endpoints apiserver=KUBECONFIG   # against any API server
package apiserver
