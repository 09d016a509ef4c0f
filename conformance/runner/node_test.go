package runner_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

// TestNodeTargets checks how the node suite turns names and endpoints into
// targets.
func TestNodeTargets(t *testing.T) {
	suite := runner.NodeSuite()
	names := func(ts []runner.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}
	empty := spec.NewRegistry()
	if got, err := suite.Targets(empty, nil, nil); err != nil || len(got) != 0 {
		t.Errorf("default targets without the process runtime = %v, %v; want none", names(got), err)
	}
	if _, err := suite.Targets(empty, []string{runner.TargetNodeProcess}, nil); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("process without the process runtime: err = %v, want ErrNotFound", err)
	}
	reg := spec.NewRegistry()
	spec.MustRegister(reg.RegisterStore(memory.Plugin()))
	spec.MustRegister(reg.RegisterRuntime(process.Plugin()))
	got, err := suite.Targets(reg, nil, nil)
	if err != nil || !slices.Equal(names(got), []string{runner.TargetNodeProcess}) {
		t.Errorf("default targets = %v, %v; want [process]", names(got), err)
	}
	if len(got) == 1 && (got[0].Plugin != "process" || got[0].Server != "memory") {
		t.Errorf("process target = %+v; want the process runtime over an API server on memory", got[0])
	}
	got, err = suite.Targets(reg, nil, []string{"http://127.0.0.1:6443"})
	if err != nil || !slices.Equal(names(got), []string{"process@endpoints"}) {
		t.Errorf("default targets with an endpoint = %v, %v; want [process@endpoints]", names(got), err)
	}
	got, err = suite.Targets(reg, []string{runner.NodeNamePrefix + "worker-1"}, []string{"http://127.0.0.1:6443"})
	if err != nil || !slices.Equal(names(got), []string{"node:worker-1"}) {
		t.Errorf("a node of the user's = %v, %v; want [node:worker-1]", names(got), err)
	}
	if _, err := suite.Targets(reg, []string{runner.NodeNamePrefix + "worker-1"}, nil); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("a node of the user's without its API server: err = %v, want ErrInvalid", err)
	}
	if _, err := suite.Targets(reg, []string{"containerd"}, nil); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("unknown target: err = %v, want ErrNotFound", err)
	}
	if _, err := suite.Targets(reg, nil, []string{"http://a", "http://b"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("two endpoints: err = %v, want ErrInvalid", err)
	}
}
