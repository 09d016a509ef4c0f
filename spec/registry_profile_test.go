package spec_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

func TestRegistryProfiles(t *testing.T) {
	reg := spec.NewRegistry()
	one := []spec.WeightedPlugin{{Name: "P"}}
	for _, name := range []string{"b-scheduler", "a-scheduler"} {
		if err := reg.RegisterProfile(spec.Profile{SchedulerName: name, Plugins: one}); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.RegisterProfile(spec.Profile{SchedulerName: "a-scheduler", Plugins: one}); !errors.Is(err, spec.ErrAlreadyExists) {
		t.Errorf("duplicate: %v, want ErrAlreadyExists", err)
	}
	if err := reg.RegisterProfile(spec.Profile{Plugins: one}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("no name: %v, want ErrInvalid", err)
	}
	if err := reg.RegisterProfile(spec.Profile{SchedulerName: "empty"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("no plugins: %v, want ErrInvalid", err)
	}
	if got := reg.ProfileNames(); !slices.Equal(got, []string{"b-scheduler", "a-scheduler"}) {
		t.Errorf("ProfileNames = %v, want registration order", got)
	}
	if p, err := reg.Profile("a-scheduler"); err != nil || p.SchedulerName != "a-scheduler" {
		t.Errorf("Profile(a-scheduler) = %v, %v", p, err)
	}
	if _, err := reg.Profile("c-scheduler"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Profile(c-scheduler): %v, want ErrNotFound", err)
	}
	ps := reg.Profiles()
	ps[0].SchedulerName = "changed"
	if reg.ProfileNames()[0] != "b-scheduler" {
		t.Error("Profiles returned the registry's own slice")
	}
}
