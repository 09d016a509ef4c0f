package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const sample = `package p

func f(a, b int, ok bool) int {
	if a < b && !ok {
		a++
		return a + 1
	}
	return b
}

func g(xs []int) {
	if len(xs) == 0 {
		xs[0] = 2
	}
}
`

// TestFindAndApply: every operator finds its site, and applying a mutant
// changes exactly that text.
func TestFindAndApply(t *testing.T) {
	ms, err := Find("p.go", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"flip-comparison `<` → `<=`":           "if a <= b && !ok {",
		"swap-logic `&&` → `||`":               "if a < b || !ok {",
		"drop-not `!` → ``":                    "if a < b && ok {",
		"swap-arith `++` → `--`":               "\t\ta--\n",
		"swap-arith `+` → `-`":                 "return a - 1",
		"off-by-one `1` → `2`":                 "return a + 2",
		"off-by-one `1` → `0`":                 "return a + 0",
		"remove-if-body-stmt `a++` → ``":       "{\n\t\t\n\t\treturn a + 1",
		"flip-comparison `==` → `!=`":          "if len(xs) != 0 {",
		"return-early `` → `return; `":         "{\n\t\treturn; xs[0] = 2",
		"off-by-one `0` → `1`":                 "if len(xs) == 1 {",
		"remove-if-body-stmt `xs[0] = 2` → ``": "{\n\t\t\n\t}",
	}
	found := map[string]bool{}
	for _, m := range ms {
		key := strings.TrimPrefix(m.String(), "p.go:")
		key = key[strings.Index(key, " ")+1:]
		exp, ok := want[key]
		if !ok || found[key] {
			continue
		}
		got := string(Apply([]byte(sample), m))
		if strings.Contains(got, exp) {
			found[key] = true
		}
		if got == sample {
			t.Errorf("%s changes nothing", m)
		}
	}
	for k := range want {
		if !found[k] {
			t.Errorf("no mutant %q applying as expected", k)
		}
	}
	// f returns a value: no early return is offered in it.
	for _, m := range ms {
		if m.Operator == OpEarlyReturn && m.Line < 10 {
			t.Errorf("early return in a function with results: %s", m)
		}
	}
}

func TestReportScore(t *testing.T) {
	r := Report{Results: []Result{{Outcome: Killed}, {Outcome: Killed}, {Outcome: Timeout}, {Outcome: Survived,
		Mutant: Mutant{File: "a.go", Line: 3, Operator: OpCompare, Old: "<", New: "<="}}, {Outcome: NotCompiled}}}
	r.tally()
	if r.Killed != 2 || r.Timeout != 1 || r.Survived != 1 || r.Invalid != 1 || r.Score != 0.75 {
		t.Errorf("tally %+v", r)
	}
	if md := r.Markdown(); !strings.Contains(md, "`a.go:3`: flip-comparison `<` → `<=`") || !strings.Contains(md, "75%") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestEquivalentsAndRescore(t *testing.T) {
	dir := t.TempDir()
	m := Mutant{File: "a.go", Line: 3, Col: 7, Operator: OpCompare, Old: "<", New: "<="}
	eq := dir + "/eq.txt"
	if err := os.WriteFile(eq, []byte("# comment\n\n"+m.ID()+" changes nothing observable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	equiv, err := readEquivalents(eq)
	if err != nil || equiv[m.ID()] != "changes nothing observable" {
		t.Fatalf("readEquivalents = %v, %v", equiv, err)
	}
	if none, err := readEquivalents(dir + "/missing.txt"); err != nil || len(none) != 0 {
		t.Errorf("a missing file: %v, %v", none, err)
	}
	rep := Report{Results: []Result{{Mutant: m, Outcome: Survived}, {Outcome: Killed}}}
	b, _ := json.Marshal(rep)
	saved := dir + "/mutation.json"
	if err := os.WriteFile(saved, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rescore(options{rescore: saved, out: dir + "/out"}, equiv); err != nil {
		t.Fatal(err)
	}
	var got Report
	b, _ = os.ReadFile(dir + "/out/mutation.json")
	if err := json.Unmarshal(b, &got); err != nil || got.Equivalent != 1 || got.Survived != 0 || got.Score != 1 {
		t.Errorf("rescored %+v, %v", got, err)
	}
}
