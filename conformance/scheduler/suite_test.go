package scheduler_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/conformance/scheduler"
	"github.com/kubelab/kubelab/fakes/brokenscheduler"
	"github.com/kubelab/kubelab/fakes/extender"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	refsched "github.com/kubelab/kubelab/reference/scheduler"
	"github.com/kubelab/kubelab/spec"
)

// targetEnv names the profile TestSuite runs kubelab's scheduler with:
// default-scheduler (the default), a baseline, or a broken scheduler of
// fakes/brokenscheduler.
const targetEnv = "KUBELAB_SCHEDULER_SUITE_TARGET"

// extenderEnv, when "1", adds the sample HTTP extender of fakes/extender
// to kubelab's scheduler, and TestSuite checks that it was called.
const extenderEnv = "KUBELAB_SCHEDULER_SUITE_EXTENDER"

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
	cfg := refsched.Config{RestConfig: srv.Config, Registry: registry(), Profiles: []spec.Profile{profile}}
	var ext *extender.Server
	if os.Getenv(extenderEnv) == "1" {
		ext = extender.New(extender.Config{})
		hs := httptest.NewServer(ext)
		t.Cleanup(hs.Close)
		cfg.Extenders = []refsched.ExtenderConfig{{URLPrefix: hs.URL, FilterVerb: "filter", PrioritizeVerb: "prioritize", Weight: 1}}
	}
	s, err := refsched.New(cfg)
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
	if ext != nil && (ext.Calls("filter") == 0 || ext.Calls("prioritize") == 0) {
		t.Errorf("the extender was not called (filter %d, prioritize %d)", ext.Calls("filter"), ext.Calls("prioritize"))
	}
}

// TestSuiteWithExtender runs the suite (without its Slow specs) against
// kubelab's default profile calling an HTTP extender: the extender changes
// nothing the suite checks, so every spec must pass.
func TestSuiteWithExtender(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite")
	}
	o := runSuite(t, profiles.DefaultSchedulerName, extenderEnv+"=1")
	for c, specs := range o.Failed {
		t.Errorf("%s failed with an extender: %s", c, strings.Join(specs, "; "))
	}
	if len(o.Passed) == 0 {
		t.Error("no spec passed")
	}
}
