package schedbench

import "testing"

func TestLoadDefault(t *testing.T) {
	f, err := Load(DefaultWorkloads)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, w := range f.Workloads {
		names[w.Name] = true
	}
	for _, want := range []string{"basic", "topology-spread", "pod-anti-affinity", "preemption-churn"} {
		if !names[want] {
			t.Errorf("the default workloads lack %q", want)
		}
	}
}

func TestLoadBadInput(t *testing.T) {
	for _, bad := range []string{
		"workloads: []",
		"workloads: [{name: x, nodes: {count: 0, cpu: '1', memory: 1Gi}, pods: {count: 1, cpu: 1m, memory: 1Mi}}]",
		"workloads: [{name: x, nodes: {count: 1, cpu: 'lots', memory: 1Gi}, pods: {count: 1, cpu: 1m, memory: 1Mi}}]",
		"workloads: [{name: x, unknown: 1}]",
	} {
		if _, err := Load([]byte(bad)); err == nil {
			t.Errorf("Load(%q): no error", bad)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]Target{
		"default-scheduler":   {Label: "default-scheduler", Kind: KindProfile, Value: "default-scheduler"},
		"extender=http://x:1": {Label: "default-scheduler+extender", Kind: KindExtender, Value: "http://x:1"},
		"name=volcano":        {Label: "external:volcano", Kind: KindExternal, Value: "volcano"},
	} {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := ParseTarget("upstream=/no/such/binary"); err == nil {
		t.Error("a missing binary must be an error")
	}
	if got := (Target{Kind: KindProfile, Value: "binpack"}).schedulerName(); got != "binpack-scheduler" {
		t.Errorf("schedulerName = %q", got)
	}
}
