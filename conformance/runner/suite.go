package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kubelab/kubelab/spec"
)

// Suite is one conformance suite as the runner knows it.
type Suite struct {
	// Name is the suite's name, which is also its area label and the
	// description given to Ginkgo ("store").
	Name string

	// Targets returns the targets to run the suite against. names are the
	// targets the user asked for (Options.Targets[Name]) and endpoints the
	// URLs of a server of the user's (Options.Endpoints[Name]); when both are
	// empty it returns the suite's default targets. An unknown name is an
	// error wrapping spec.ErrNotFound. It runs in the parent process.
	Targets func(reg *spec.Registry, names, endpoints []string) ([]Target, error)

	// Declare runs in the child process, before Ginkgo's RunSpecs: it builds
	// target t from reg and declares the suite's specs for it (normally by
	// calling the suite package's Register). When dryRun is true no spec body
	// will run, so Declare must not start servers or open stores. The
	// returned cleanup, which may be nil, runs after the specs have run; an
	// error from it fails the target.
	Declare func(ctx context.Context, reg *spec.Registry, t Target, dryRun bool) (cleanup func() error, err error)

	// Capabilities, when set, lists the suite's capability labels in the
	// order reports show them as matrix rows; capabilities not listed
	// follow, sorted.
	Capabilities []spec.Capability

	// Claims, when set, returns the optional capabilities target t claims,
	// for the report (informational; the suite itself gates specs on them).
	Claims func(reg *spec.Registry, t Target) spec.Capabilities
}

// Target is one configuration of a plugin that a suite runs against. It
// crosses the process boundary as JSON and is kept in the Report, so that
// RerunFailed can run exactly the same target again.
type Target struct {
	// Name is how reports name the target ("memory", "etcd@endpoints",
	// "etcd-server"). It is unique within a suite's run.
	Name string `json:"name"`
	// Plugin is the registry name of the plugin under test.
	Plugin string `json:"plugin"`
	// Endpoints, when set, are the URLs of an external server the plugin
	// connects to instead of running its own.
	Endpoints []string `json:"endpoints,omitempty"`
	// Server, when set, names an external server that the child starts for
	// the run and points the plugin at (the store suite knows "etcd").
	Server string `json:"server,omitempty"`
}

// Suites returns the suites this package knows, in the order they run. The
// slice is new on each call; callers may append their own suites to it and
// hand the result to a Runner.
func Suites() []Suite {
	return []Suite{StoreSuite(), APIServerSuite(), RuntimeSuite(), SchedulerSuite(), ProxySuite(), NodeSuite()}
}

// suiteNames lists the names of suites, in order.
func suiteNames(suites []Suite) []string {
	out := make([]string, len(suites))
	for i, s := range suites {
		out[i] = s.Name
	}
	return out
}

// selectSuites returns the suites named in names (all of them when names is
// empty), in catalogue order.
func selectSuites(all []Suite, names []string) ([]Suite, error) {
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		return all, nil
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(s Suite) bool { return s.Name == n }) {
			return nil, fmt.Errorf("suite %q (known: %s): %w", n, strings.Join(suiteNames(all), ", "), spec.ErrNotFound)
		}
	}
	var out []Suite
	for _, s := range all {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

func findSuite(all []Suite, name string) (Suite, bool) {
	for _, s := range all {
		if s.Name == name {
			return s, true
		}
	}
	return Suite{}, false
}
