package scheduler

import (
	"testing"
	"time"

	"github.com/kubelab/kubelab/spec"
)

func TestExampleConfigFile(t *testing.T) {
	fc, err := LoadFileConfig("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := spec.Profile{SchedulerName: "default-scheduler", Plugins: []spec.WeightedPlugin{
		{Name: "PrioritySort"}, {Name: "NodeResourcesFit", Weight: 1}, {Name: "NodeResourcesBalancedAllocation", Weight: 1}, {Name: "DefaultBinder"}}}
	ps, err := fc.ResolveProfiles(func(name string) (spec.Profile, bool) { return base, name == "default-scheduler" })
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].SchedulerName != "default-scheduler" || len(ps[0].Plugins) != 4 {
		t.Fatalf("profiles %+v", ps)
	}
	p := ps[1]
	if p.SchedulerName != "packing-scheduler" || p.PercentageOfNodesToScore != 50 || len(p.Plugins) != 3 ||
		p.Plugins[1].Name != "NodeResourcesFit" || p.Plugins[1].Weight != 5 || p.Plugins[1].Args["scoringStrategy"] != "MostAllocated" {
		t.Errorf("packing profile %+v", p)
	}
	var cfg Config
	fc.Apply(&cfg)
	if len(cfg.Extenders) != 1 || cfg.Extenders[0].HTTPTimeout.Duration != 2*time.Second || !cfg.Extenders[0].Ignorable ||
		cfg.PodMaxBackoff != 10*time.Second {
		t.Errorf("config %+v", cfg)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":        "profiles: [{schedulerName: a}]\nbogus: 1\n",
		"no profiles":          "percentageOfNodesToScore: 10\n",
		"bad duration":         "profiles: [{schedulerName: a}]\npodMaxBackoff: soon\n",
		"unknown plugin field": "profiles: [{schedulerName: a, plugins: [{name: X, wieght: 2}]}]\n",
	} {
		if _, err := ParseFileConfig([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	for name, doc := range map[string]string{
		"unknown from":      "profiles: [{schedulerName: a, from: nope}]\n",
		"no name":           "profiles: [{plugins: [{name: X}]}]\n",
		"disable not there": "profiles: [{schedulerName: a, disabled: [X]}]\n",
	} {
		fc, err := ParseFileConfig([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := fc.ResolveProfiles(nil); err == nil {
			t.Errorf("%s: resolved", name)
		}
	}
}
