package scheduler_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/conformance/scheduler"
	"github.com/kubelab/kubelab/fakes/brokenscheduler"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	refsched "github.com/kubelab/kubelab/reference/scheduler"
	"github.com/kubelab/kubelab/spec"
)

// targetEnv names the profile TestSuite runs kubelab's scheduler with:
// default-scheduler (the default), a baseline, or a broken scheduler of
// fakes/brokenscheduler.
const targetEnv = "KUBELAB_SCHEDULER_SUITE_TARGET"

// lookupProfile finds a built-in or broken profile by scheduler name.
func lookupProfile(name string) (spec.Profile, bool) {
	for _, p := range append(profiles.All(), brokenscheduler.Profiles()...) {
		if p.SchedulerName == name {
			return p, true
		}
	}
	return spec.Profile{}, false
}

// registry holds kubelab's scheduler plugins and the broken ones.
func registry() *spec.Registry {
	reg := spec.NewRegistry()
	for _, p := range append(profiles.Plugins(), brokenscheduler.Plugins()...) {
		spec.MustRegister(reg.RegisterScheduler(p))
	}
	return reg
}

// TestSuite runs the suite in-process against kubelab's API server (memory
// store) and kubelab's scheduler with the profile $KUBELAB_SCHEDULER_SUITE_TARGET.
func TestSuite(t *testing.T) {
	name := os.Getenv(targetEnv)
	if name == "" {
		name = profiles.DefaultSchedulerName
	}
	profile, ok := lookupProfile(name)
	if !ok {
		t.Fatalf("%s=%q: no such profile", targetEnv, name)
	}
	srv := apiservertest.Start(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := refsched.New(refsched.Config{RestConfig: srv.Config, Registry: registry(), Profiles: []spec.Profile{profile}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("scheduler: %v", err)
		}
	})
	<-s.Leading()
	scheduler.Register(scheduler.Target{
		Name:          name,
		SchedulerName: name,
		Config:        func(context.Context) (*rest.Config, error) { return srv.Config, nil },
	})
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "scheduler")
}
