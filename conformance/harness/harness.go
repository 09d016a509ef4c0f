// Package harness holds what every conformance suite shares, and what a
// third party needs to write suites and meta-tests the same way:
//
//   - label conventions and capability gating (Labels, CapabilityOf,
//     Require), below;
//   - per-spec isolation: CreateNamespace and DeleteNamespace give a spec a
//     namespace of its own (with the default ServiceAccount a bare
//     kube-apiserver lacks);
//   - the meta-test that proves a suite has teeth: RunChild runs a suite in
//     a child process of the test binary and reads its Ginkgo JSON report
//     into an Outcome per capability; ExpectCaught and ExpectAllCaught check
//     that every deliberately broken plugin fails exactly its capability;
//   - TailBuffer, the end of a child process's output for error messages.
//
// Helpers that plugins need too live under spec/ instead (spec/freeport,
// spec/procstat, spec/ociimage), since a plugin never imports conformance.
//
// Label conventions (the runner and the reports rely on them):
//   - every spec carries its area label, the suite's name ("store", "scheduler", ...);
//   - every spec carries exactly one capability label "area:capability"
//     (e.g. "store:watch-ordered"); the report's matrix has one row per
//     capability label;
//   - "Slow", "Serial" and "Disruptive" are added where true.
//
// A spec that needs an optional capability (one a plugin declares through
// spec.Capabilities) calls Require first; a plugin that does not claim it gets
// the spec skipped, with SkipReasonUnclaimed in the message, and the report
// shows the capability as skipped rather than failed.
package harness

import (
	"fmt"
	"strings"

	"github.com/onsi/ginkgo/v2"

	"github.com/kubelab/kubelab/spec"
)

// Well-known Ginkgo labels beside area and capability.
const (
	// LabelSlow marks specs that take more than a few seconds.
	LabelSlow = "Slow"
	// LabelSerial marks specs that must not run in parallel with others.
	LabelSerial = "Serial"
	// LabelDisruptive marks specs that stop or restart components.
	LabelDisruptive = "Disruptive"
)

// SkipReasonUnclaimed starts the skip message of a spec whose optional
// capability the plugin under test does not declare.
const SkipReasonUnclaimed = "capability not claimed by the plugin"

// Labels returns the Ginkgo labels of a spec proving capability (of the form
// "area:feature"), with its area and any extra labels (LabelSlow, ...).
// It panics on a malformed capability: that is a bug in the suite.
func Labels(capability spec.Capability, extra ...string) ginkgo.Labels {
	if err := capability.Validate(); err != nil {
		panic(err)
	}
	return append(ginkgo.Labels{capability.Area(), string(capability)}, extra...)
}

// CapabilityOf returns the capability label among labels ("" if none).
func CapabilityOf(labels []string) string {
	for _, l := range labels {
		if strings.Contains(l, ":") {
			return l
		}
	}
	return ""
}

// Require skips the current spec unless claimed includes c.
func Require(claimed spec.Capabilities, c spec.Capability) {
	ginkgo.GinkgoHelper()
	if !claimed.Has(c) {
		ginkgo.Skip(fmt.Sprintf("%s: %s", SkipReasonUnclaimed, c))
	}
}
