// Package brokenruntime holds deliberately broken container runtimes: thin
// wrappers of a correct spec.Runtime (kubelab's process runtime), each with
// one realistic bug, registered as runtime plugins so that the runtime
// conformance suite (conformance/runtime) can be shown to catch every one
// of them. A suite that passes a broken runtime is a broken suite.
//
// Each wrapper forwards to the runtime its base plugin starts and changes
// one behaviour; Catalog says which capability's specs must catch it. The
// names start with "broken-", so runners never pick them as default
// targets.
package brokenruntime
