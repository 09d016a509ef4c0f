// Package runner runs kubelab's conformance suites against targets and
// aggregates the results into one Report.
//
// Ginkgo runs a suite once per process, so the runner starts one child
// process per (suite, target): it re-executes a binary (by default the
// running one) with the environment variable ChildEnv holding the child's
// configuration as JSON. Every program that runs conformance — the kubelab
// command, a third party's own kubelab, a test binary — calls
// RunChildIfRequested first thing in main (or TestMain), with the same
// Registry it gives Run; in a child that call runs the suite and exits, in the
// parent it returns at once.
//
// A child writes Ginkgo's JSON report and, as it goes, one line per spec to a
// progress file, so that a child that crashes or hangs still leaves a record
// of what ran; such a child counts as failed, with the tail of its stderr as
// the message. It never passes silently.
//
// The Report (see Report) has one result per suite, target and spec, and a
// capability × target matrix per suite. It is written as JSON (re-readable,
// for RerunFailed), Markdown, self-contained HTML, JUnit XML and a plain-text
// matrix for terminals.
//
// Suites are listed explicitly in Suites; adding one is one Suite value: its
// name, how its targets are chosen from Options, and how a child declares its
// specs for one target.
package runner
