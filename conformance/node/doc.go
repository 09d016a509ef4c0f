// Package node is the node (kubelet) conformance suite: Ginkgo v2 specs
// that judge a kubelet only through the Kubernetes API — its Node and the
// Node's Lease in kube-node-lease, and the status it writes for the pods
// bound to it (phase, conditions, containerStatuses) — never through its
// logs, its files or its runtime. So the same specs judge kubelab's
// kubelet over any runtime and any kubelet registered against an API
// server, the upstream one included.
//
// Every pod of a spec lives in a namespace of its own and names the node
// under test in spec.nodeName, so no scheduler is needed. Pods run the
// test images of conformance/runtime (BusyboxImage, WorkloadImage) with
// imagePullPolicy IfNotPresent: the node's runtime must hold them.
//
// Time bounds are upstream's: a Lease renewed every 10 s (duration 40 s),
// the crash-loop back-off starting at 10 s. A kubelet whose back-off is
// shortened for tests passes the same specs sooner.
//
// No broken kubelets exist yet: fakes/ may import only spec/ and plugins/,
// and a kubelet is reference/kubelet. The meta-test runs a misconfigured
// kubelab kubelet instead (a back-off that never grows).
//
// Every spec carries the area label "node" and one capability label (see
// Capabilities); a Target claims capabilities, and the specs of unclaimed
// ones are skipped and reported as such.
package node
