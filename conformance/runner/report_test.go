package runner_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/conformance/runner/runnertest"
	"github.com/kubelab/kubelab/spec"
)

func storeRegistry(t *testing.T, names ...string) *spec.Registry {
	t.Helper()
	reg := spec.NewRegistry()
	for _, n := range names {
		err := reg.RegisterStore(spec.StorePlugin{
			Name:         n,
			Capabilities: spec.Capabilities{spec.CapStoreTTL},
			New: func(context.Context, spec.StoreConfig) (spec.Store, error) {
				return nil, spec.ErrUnsupported
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func TestStoreTargets(t *testing.T) {
	reg := storeRegistry(t, "memory", "etcd", "broken-lost-update")
	eps := []string{"http://127.0.0.1:2379"}
	for _, tc := range []struct {
		name       string
		names, eps []string
		want       []runner.Target
		wantErr    error
	}{
		{
			name:  "named plugins, broken ones too",
			names: []string{"memory", "broken-lost-update"},
			want:  []runner.Target{{Name: "memory", Plugin: "memory"}, {Name: "broken-lost-update", Plugin: "broken-lost-update"}},
		},
		{
			name:  "etcd-server",
			names: []string{"etcd-server"},
			want:  []runner.Target{{Name: "etcd-server", Plugin: "etcd", Server: "etcd"}},
		},
		{
			name: "endpoints alone",
			eps:  eps,
			want: []runner.Target{{Name: "etcd@endpoints", Plugin: "etcd", Endpoints: eps}},
		},
		{
			name:  "endpoints beside plugins",
			names: []string{"memory"},
			eps:   eps,
			want:  []runner.Target{{Name: "memory", Plugin: "memory"}, {Name: "etcd@endpoints", Plugin: "etcd", Endpoints: eps}},
		},
		{
			name:  "named endpoints target",
			names: []string{"memory@endpoints"},
			eps:   eps,
			want:  []runner.Target{{Name: "memory@endpoints", Plugin: "memory", Endpoints: eps}},
		},
		{name: "endpoints target without endpoints", names: []string{"etcd@endpoints"}, wantErr: spec.ErrInvalid},
		{name: "unknown plugin", names: []string{"nope"}, wantErr: spec.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runner.StoreSuite().Targets(reg, tc.names, tc.eps)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b runner.Target) bool {
				return a.Name == b.Name && a.Plugin == b.Plugin && a.Server == b.Server && slices.Equal(a.Endpoints, b.Endpoints)
			}) {
				t.Errorf("targets = %+v, want %+v", got, tc.want)
			}
		})
	}

	t.Run("defaults skip broken plugins", func(t *testing.T) {
		got, err := runner.StoreSuite().Targets(reg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tg := range got {
			names = append(names, tg.Name)
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n == runner.TargetEtcdServer })
		if !slices.Equal(names, []string{"etcd", "memory"}) {
			t.Errorf("default targets = %v, want etcd, memory (and maybe etcd-server)", names)
		}
	})
	t.Run("no etcd-server without the etcd plugin", func(t *testing.T) {
		got, _ := runner.StoreSuite().Targets(storeRegistry(t, "memory"), nil, nil)
		if len(got) != 1 || got[0].Name != "memory" {
			t.Errorf("default targets = %+v, want memory only", got)
		}
	})
}

// results builds a one-suite report from per-target spec results.
func results(targets map[string][]runner.SpecResult, order ...string) *runner.Report {
	s := runner.SuiteReport{Name: "store", Capabilities: []string{"store:crud", "store:ttl"}}
	for _, name := range order {
		s.Targets = append(s.Targets, runner.TargetReport{Target: runner.Target{Name: name}, Specs: targets[name]})
	}
	return &runner.Report{Kind: runner.ReportKind, Version: runner.ReportVersion, Suites: []runner.SuiteReport{s}}
}

func sp(capability, state string, unclaimed bool) runner.SpecResult {
	return runner.SpecResult{Name: capability + " " + state, Capability: capability, State: state, Unclaimed: unclaimed}
}

func TestMatrix(t *testing.T) {
	rep := results(map[string][]runner.SpecResult{
		"a": {
			sp("store:crud", runner.StatePassed, false),
			sp("store:crud", runner.StateFailed, false),
			sp("store:ttl", runner.StateSkipped, true),
			sp("store:zeta", runner.StatePassed, false),
			sp("store:alpha", runner.StateSkipped, false),
		},
		"b": {
			sp("store:crud", runner.StatePassed, false),
			sp("store:crud", runner.StateSkipped, false),
			sp("store:ttl", runner.StatePanicked, false),
			sp("store:alpha", runner.StatePending, false),
			{Name: "[suite]", Capability: runner.SuiteRow, State: runner.StateFailed},
		},
	}, "a", "b")
	m := rep.Matrices()[0]
	if want := []string{"store:crud", "store:ttl", "store:alpha", "store:zeta", runner.SuiteRow}; !slices.Equal(m.Capabilities, want) {
		t.Fatalf("rows = %v, want %v", m.Capabilities, want)
	}
	for _, tc := range []struct {
		row, col int
		want     runner.Cell
	}{
		{0, 0, runner.Cell{Status: runner.CellFailed, Passed: 1, Failed: 1}},
		{0, 1, runner.Cell{Status: runner.CellPassed, Passed: 1, Skipped: 1}},
		{1, 0, runner.Cell{Status: runner.CellSkipped, Skipped: 1, Unclaimed: 1}},
		{1, 1, runner.Cell{Status: runner.CellFailed, Failed: 1}},
		{2, 0, runner.Cell{Status: runner.CellSkipped, Skipped: 1}},
		{2, 1, runner.Cell{Status: runner.CellSkipped, Skipped: 1}},
		{3, 0, runner.Cell{Status: runner.CellPassed, Passed: 1}},
		{3, 1, runner.Cell{}},
		{4, 0, runner.Cell{}},
		{4, 1, runner.Cell{Status: runner.CellFailed, Failed: 1}},
	} {
		if got := m.Cells[tc.row][tc.col]; got != tc.want {
			t.Errorf("cell %s × %s = %+v, want %+v", m.Capabilities[tc.row], m.Targets[tc.col], got, tc.want)
		}
	}
	if !m.Cells[1][0].AllUnclaimed() || m.Cells[2][0].AllUnclaimed() {
		t.Errorf("AllUnclaimed wrong")
	}
	if c := rep.Counts(); c != (runner.Counts{Passed: 3, Failed: 3, Skipped: 3, Pending: 1}) {
		t.Errorf("counts = %+v", c)
	}
	if !rep.Failed() || rep.ExitCode() != 1 || len(rep.Failures()) != 3 {
		t.Errorf("failed=%v exit=%d failures=%d", rep.Failed(), rep.ExitCode(), len(rep.Failures()))
	}
}

func TestPassedSkippedReportIsNotFailed(t *testing.T) {
	rep := results(map[string][]runner.SpecResult{
		"a": {sp("store:crud", runner.StatePassed, false), sp("store:ttl", runner.StateSkipped, true)},
	}, "a")
	if rep.Failed() || rep.ExitCode() != 0 {
		t.Errorf("a report with passes and skips failed")
	}
	rep.Suites[0].Targets[0].Crashed = true
	if !rep.Failed() {
		t.Errorf("a crashed target does not fail the report")
	}
}

func TestMarkdownAndHTMLEscape(t *testing.T) {
	hostile := runner.SpecResult{
		Name: "a | b <i>x</i> `c` *d*", Capability: "store:crud", State: runner.StateFailed,
		Message: runnertest.HostileMessage + "\n````\nmore",
	}
	rep := results(map[string][]runner.SpecResult{"t|<x>": {hostile}}, "t|<x>")
	rep.StartTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep.EndTime = rep.StartTime.Add(90 * time.Second)

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| capability | t\\|&lt;x&gt; |",
		"| `store:crud` | ❌ 1/1 failed |",
		"### ❌ \\[t\\|&lt;x&gt;\\] a \\| b &lt;i&gt;x&lt;/i&gt; \\`c\\` \\*d\\*",
		"`````text\n",
		"Started 2026-01-02T03:04:05Z, took 1m30s.",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "<script>") || strings.Contains(html.String(), "<i>x</i>") || strings.Contains(html.String(), "t|<x>") {
		t.Errorf("HTML embeds unescaped text:\n%s", html.String())
	}
	if !strings.Contains(html.String(), "&lt;script&gt;") {
		t.Errorf("HTML lost the message")
	}
}
