package runner_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/spec"
)

// TestMistypedSchedulerListsEveryProfile: a scheduler target naming no
// registered profile fails with spec.ErrNotFound and lists every
// registered profile — a third party's as well as kubelab's — and a third
// party's profile is a target like a built-in one.
func TestMistypedSchedulerListsEveryProfile(t *testing.T) {
	reg := builtin.Registry()
	spec.MustRegister(reg.RegisterProfile(spec.Profile{SchedulerName: "my-scheduler", Plugins: []spec.WeightedPlugin{{Name: "NodeName"}}}))
	suite := runner.SchedulerSuite()
	if got, err := suite.Targets(reg, []string{"my-scheduler"}, nil); err != nil || len(got) != 1 || got[0].Plugin != "my-scheduler" {
		t.Fatalf("my-scheduler: %+v, %v", got, err)
	}
	_, err := suite.Targets(reg, []string{"my-schedular"}, nil)
	if !errors.Is(err, spec.ErrNotFound) {
		t.Fatalf("mistyped: %v, want ErrNotFound", err)
	}
	for _, want := range []string{"my-scheduler", "default-scheduler", "binpack-scheduler"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not list %q", err, want)
		}
	}
}
