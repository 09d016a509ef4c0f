package runner_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/fakes/brokenruntime"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/spec"
)

// TestRuntimeTargets checks how the runtime suite turns names and
// endpoints into targets.
func TestRuntimeTargets(t *testing.T) {
	reg := spec.NewRegistry()
	spec.MustRegister(reg.RegisterRuntime(process.Plugin()))
	for _, p := range brokenruntime.Plugins(process.Plugin()) {
		spec.MustRegister(reg.RegisterRuntime(p))
	}
	targets := runner.RuntimeSuite().Targets
	names := func(ts []runner.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}

	def, err := targets(reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{process.Name, runner.TargetProcessGRPC}
	if containerd.Available() == nil {
		want = append(want, runner.TargetContainerd)
	}
	if got := names(def); !slices.Equal(got, want) {
		t.Errorf("default targets %v, want %v (never a broken runtime)", got, want)
	}

	named, err := targets(reg, []string{brokenruntime.NoExitCodes, runner.TargetProcessGRPC, runner.TargetContainerd},
		[]string{"unix:///run/containerd/containerd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(named), []string{brokenruntime.NoExitCodes, runner.TargetProcessGRPC, runner.TargetContainerd,
		runner.CRIEndpointPrefix + "unix:///run/containerd/containerd.sock"}; !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	if ep := named[3]; !slices.Equal(ep.Endpoints, []string{"unix:///run/containerd/containerd.sock"}) {
		t.Errorf("endpoint target %+v", ep)
	}

	if _, err := targets(reg, []string{"nope"}, nil); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("unknown runtime: %v, want ErrNotFound", err)
	}
	if _, err := targets(reg, nil, []string{"/run/containerd/containerd.sock"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("endpoint without unix://: %v, want ErrInvalid", err)
	}
}
