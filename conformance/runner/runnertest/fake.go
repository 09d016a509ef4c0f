// Package runnertest provides a fake conformance suite for tests of the
// runner and of commands built on it: its targets are behaviours (pass,
// fail, crash, hang) rather than plugins, and its specs run in microseconds.
package runnertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/spec"
)

// SuiteName is the fake suite's name.
const SuiteName = "fake"

// MarkerEnv names an environment variable holding the path of a file to
// which each fake spec body appends a line with its name (spaces replaced
// by "_"), so tests see which specs actually ran.
const MarkerEnv = "KUBELAB_RUNNER_TEST_MARKER"

// Capability labels of the fake suite.
const (
	// CapBasic is mandatory: every target is tested for it.
	CapBasic spec.Capability = "fake:basic"
	// CapTTL is optional: only target good claims it.
	CapTTL spec.Capability = "fake:ttl"
	// CapEscape labels the spec whose failure message is HostileMessage.
	CapEscape spec.Capability = "fake:escape"
)

// HostileMessage is the failure message of the "escapes" spec on target
// bad: reports must escape it.
const HostileMessage = "<script>alert('x')</script> | a pipe & `ticks` ```fence```"

// Suite returns the fake suite. Its specs, in one container "fake":
// "a first spec" (fake:basic), "round-trips values" (fake:basic),
// "honours TTLs" (fake:ttl, Slow; needs the claim), "escapes <b>html</b> |
// and pipes" (fake:escape). Its targets (default: good, bad):
//
//	good        passes everything, claims fake:ttl
//	bad         fails "round-trips values" and "escapes", claims nothing
//	crash       passes "a first spec", then crashes the process in the next
//	hang        blocks before RunSpecs (unless listing), until killed
//	badcleanup  passes, but its cleanup fails
//	slow        has a fifth spec, "waits for an event", that times out
func Suite() runner.Suite {
	return runner.Suite{
		Name:         SuiteName,
		Capabilities: []spec.Capability{CapBasic, CapTTL, CapEscape},
		Targets: func(_ *spec.Registry, names, endpoints []string) ([]runner.Target, error) {
			if len(names) == 0 {
				names = []string{"good", "bad"}
			}
			var out []runner.Target
			for _, n := range names {
				switch n {
				case "good", "bad", "crash", "hang", "badcleanup", "slow":
				default:
					return nil, fmt.Errorf("fake target %q: %w", n, spec.ErrNotFound)
				}
				out = append(out, runner.Target{Name: n, Plugin: n, Endpoints: endpoints})
			}
			return out, nil
		},
		Claims: func(_ *spec.Registry, t runner.Target) spec.Capabilities {
			if t.Name == "good" {
				return spec.Capabilities{CapTTL}
			}
			return nil
		},
		Declare: declareFake,
	}
}

// Ran reads the marker file at path: the names of the spec bodies that ran.
func Ran(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Fields(string(data))
}

func mark(name string) {
	path := os.Getenv(MarkerEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintln(f, strings.ReplaceAll(name, " ", "_"))
}

func declareFake(_ context.Context, _ *spec.Registry, t runner.Target, dryRun bool) (func() error, error) {
	if t.Name == "hang" && !dryRun {
		time.Sleep(time.Hour)
	}
	var claimed spec.Capabilities
	if t.Name == "good" {
		claimed = spec.Capabilities{CapTTL}
	}
	ginkgo.Describe("fake", func() {
		ginkgo.It("a first spec", harness.Labels(CapBasic), func() {
			mark("a first spec")
		})
		ginkgo.It("round-trips values", harness.Labels(CapBasic), func() {
			mark("round-trips values")
			if t.Name == "crash" {
				go panic("boom: the fake store crashed")
				time.Sleep(time.Minute)
			}
			gomega.Expect(t.Name).NotTo(gomega.Equal("bad"), "the value came back different")
		})
		ginkgo.It("honours TTLs", harness.Labels(CapTTL, harness.LabelSlow), func() {
			harness.Require(claimed, CapTTL)
			mark("honours TTLs")
		})
		ginkgo.It("escapes <b>html</b> | and pipes", harness.Labels(CapEscape), func() {
			mark("escapes")
			if t.Name == "bad" {
				ginkgo.Fail(HostileMessage)
			}
		})
		if t.Name == "slow" {
			ginkgo.It("waits for an event", harness.Labels(CapBasic), ginkgo.SpecTimeout(200*time.Millisecond), func(ctx ginkgo.SpecContext) {
				mark("waits for an event")
				ginkgo.By("waiting for the fake watch")
				<-ctx.Done()
			})
		}
	})
	if t.Name == "badcleanup" {
		return func() error { return fmt.Errorf("cleanup of the fake server failed") }, nil
	}
	return nil, nil
}
