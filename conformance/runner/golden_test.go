package runner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
)

func TestParseGolden(t *testing.T) {
	for name, doc := range map[string]string{
		"sequence": `
- suite: store
  name: "Store CRUD creates: a key"
  capability: store:crud
  labels: [store, store:crud]
  description: A store MUST create.
`,
		"wrapped": `
specs:
- suite: store
  name: "Store CRUD creates: a key"
  capability: store:crud
  labels: [store, store:crud]
  description: A store MUST create.
`,
	} {
		t.Run(name, func(t *testing.T) {
			es, err := runner.ParseGolden([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			want := runner.GoldenEntry{Suite: "store", Name: "Store CRUD creates: a key", Capability: "store:crud", Labels: []string{"store", "store:crud"}, Description: "A store MUST create."}
			if len(es) != 1 || es[0].Name != want.Name || es[0].Description != want.Description || !slices.Equal(es[0].Labels, want.Labels) {
				t.Errorf("entries = %+v", es)
			}
		})
	}
	if _, err := runner.ParseGolden([]byte("a: [1]\nb: [2]\n")); err == nil {
		t.Errorf("an ambiguous document parsed")
	}
	if _, err := runner.ParseGolden([]byte("- suite: s\n  nmae: typo\n")); err == nil {
		t.Errorf("an entry with an unknown field parsed")
	}
}

func TestCompareGolden(t *testing.T) {
	code := []runner.GoldenEntry{
		{Suite: "store", Name: "A", Capability: "store:crud", Labels: []string{"store", "store:crud"}},
		{Suite: "store", Name: "B", Capability: "store:cas", Labels: []string{"store", "store:cas"}},
		{Suite: "store", Name: "C", Capability: "store:list", Labels: []string{"store", "store:list", "Slow"}},
		{Suite: "store", Name: "E", Capability: "store:list", Labels: []string{"store", "store:list"}},
	}
	golden := []runner.GoldenEntry{
		{Suite: "store", Name: "A", Capability: "store:crud", Description: "It MUST work."},
		{Suite: "store", Name: "B", Capability: "store:crud", Description: "It MUST work."},
		{Suite: "store", Name: "C", Capability: "store:list", Labels: []string{"store", "store:list"}, Description: "It MUST work."},
		{Suite: "store", Name: "D", Capability: "store:crud", Description: "It MUST work."},
		{Suite: "store", Name: "E", Capability: "store:list", Description: "it should work"},
		{Suite: "store", Name: "E", Capability: "store:list", Description: "It MUST work."},
		{Suite: "scheduler", Name: "not in this build", Capability: "scheduler:x", Description: "It MUST."},
		{Suite: "store", Name: "F"},
	}
	d := runner.CompareGolden(golden, code)
	if d.Empty() {
		t.Fatal("no difference found")
	}
	names := func(es []runner.GoldenEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	if got := names(d.Missing); len(got) != 0 {
		t.Errorf("missing = %v", got)
	}
	if got := names(d.Extra); !slices.Equal(got, []string{"D", "F"}) {
		t.Errorf("extra = %v, want D, F (not the scheduler entry: that suite is not in the code)", got)
	}
	if len(d.Mismatched) != 2 || !strings.Contains(d.Mismatched[0], `"store:cas" in the code, "store:crud" in the list`) || !strings.Contains(d.Mismatched[1], "labels") {
		t.Errorf("mismatched = %q", d.Mismatched)
	}
	if len(d.Invalid) != 3 {
		t.Errorf("invalid = %q, want E without MUST, E twice, F without description", d.Invalid)
	}

	d = runner.CompareGolden(golden[:1], code)
	if got := names(d.Missing); !slices.Equal(got, []string{"B", "C", "E"}) {
		t.Errorf("missing = %v", got)
	}
	msg := d.String()
	for _, want := range []string{"3 specs are missing", "- suite: \"store\"\n  name: \"B\"\n  capability: \"store:cas\"\n", runner.GoldenPlaceholder} {
		if !strings.Contains(msg, want) {
			t.Errorf("diff message lacks %q:\n%s", want, msg)
		}
	}

	// What MissingYAML prints parses back, and fails the MUST check until
	// someone writes the description.
	y, err := runner.MissingYAML(d.Missing)
	if err != nil {
		t.Fatal(err)
	}
	back, err := runner.ParseGolden(y)
	if err != nil {
		t.Fatalf("MissingYAML output does not parse: %v\n%s", err, y)
	}
	d = runner.CompareGolden(append(golden[:1:1], back...), code)
	if len(d.Missing)+len(d.Extra)+len(d.Mismatched) != 0 || len(d.Invalid) != 3 {
		t.Errorf("after adding the generated entries: %s", d.String())
	}
}

func TestGoldenFromReport(t *testing.T) {
	rep := results(map[string][]runner.SpecResult{
		"a": {{Name: "Z", Capability: "store:crud", State: runner.StateListed}, {Name: "A", Capability: "store:ttl", State: runner.StateListed}},
		"b": {{Name: "A", Capability: "store:ttl", State: runner.StateListed}, {Name: "[suite]", Capability: runner.SuiteRow, State: runner.StateFailed}},
	}, "a", "b")
	got := runner.GoldenFromReport(rep)
	if len(got) != 2 || got[0].Name != "A" || got[1].Name != "Z" || got[0].Suite != "store" {
		t.Errorf("entries = %+v", got)
	}
}
