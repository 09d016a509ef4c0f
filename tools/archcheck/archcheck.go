// Command archcheck fails when an import points against kubelab's
// dependency direction, tools → reference, plugins, fakes, conformance → spec.
// `make lint` runs it over the whole module; it prints one
// "importer → imported (rule)" line per wrong-way import.
//
// It reads the package graph with `go list -json` (imports of non-test
// files, and separately of _test.go files, both in-package and external
// tests). The rules, by the importer's top-level directory:
//
//   - spec/...: only spec/... .
//   - plugins/F/... (F a family: store, runtime, scheduler, proxy, ...): only
//     spec/... and plugins/F/... — a family may share its own helpers
//     (plugins/scheduler/pluginhelper), never another family's.
//     plugins/builtin is the registry wiring and may import every plugin.
//     Test files are held to the same rule.
//   - reference/...: only spec/... and reference/... — never a concrete
//     plugin; plugins come in through spec.Registry or as values. Test files
//     may also import plugins/... and fakes/...: a test hands the concrete
//     parts in, as a main does.
//   - fakes/...: only spec/..., plugins/... and fakes/... — a broken plugin
//     is a real plugin with one thing broken, so it may wrap one.
//   - conformance/...: only spec/... and conformance/... — a suite gets the
//     plugin under test from the registry its caller hands in. Test files
//     (the meta-tests that run the suites against built-in, broken and
//     reference parts) may also import plugins/..., fakes/... and
//     reference/..., never tools/... .
//   - tools/...: anything; nothing outside tools/ imports tools/... .
//
// A package in any other top-level directory is reported, so a new area
// gets a rule before it gets imports.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// Package is what archcheck needs of one `go list -json` entry.
type Package struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// Violation is one wrong-way import.
type Violation struct {
	// From and To are module-relative import paths ("" for the module root).
	From, To string
	// Test is true when only test files make the import.
	Test bool
	// Rule says what From may import.
	Rule string
}

func (v Violation) String() string {
	kind := ""
	if v.Test {
		kind = " (test files)"
	}
	return fmt.Sprintf("%s → %s%s: %s", v.From, v.To, kind, v.Rule)
}

// area returns the first path element of a module-relative path.
func area(p string) string {
	a, _, _ := strings.Cut(p, "/")
	return a
}

// under reports whether p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// allowed reports whether module-relative package from may import to, in
// test files when test is set, and otherwise the rule it breaks.
func allowed(from, to string, test bool) (bool, string) {
	switch area(from) {
	case "spec":
		return under(to, "spec"), "spec/... imports only spec/..."
	case "plugins":
		if under(from, "plugins/builtin") {
			return under(to, "spec") || under(to, "plugins"), "plugins/builtin imports only spec/... and plugins/..."
		}
		parts := strings.SplitN(from, "/", 3)
		if len(parts) < 2 {
			return under(to, "spec"), "plugins imports only spec/..."
		}
		fam := "plugins/" + parts[1]
		return under(to, "spec") || under(to, fam), fmt.Sprintf("%s/... imports only spec/... and %s/...", fam, fam)
	case "reference":
		if test {
			return under(to, "spec") || under(to, "reference") || under(to, "plugins") || under(to, "fakes"),
				"reference/... tests import only spec/..., reference/..., plugins/... and fakes/..."
		}
		return under(to, "spec") || under(to, "reference"), "reference/... imports only spec/... and reference/... (never a concrete plugin)"
	case "fakes":
		return under(to, "spec") || under(to, "plugins") || under(to, "fakes"), "fakes/... imports only spec/..., plugins/... and fakes/..."
	case "conformance":
		if test {
			return area(to) != "tools", "conformance/... tests never import tools/..."
		}
		return under(to, "spec") || under(to, "conformance"), "conformance/... imports only spec/... and conformance/... (plugins come in through the registry)"
	case "tools":
		return true, ""
	}
	return false, fmt.Sprintf("%q is in no known layer (spec, plugins, reference, fakes, conformance, tools): give it a rule in tools/archcheck", area(from))
}

// Check returns the wrong-way imports among pkgs, whose import paths start
// with module. Imports outside the module are not checked.
func Check(module string, pkgs []Package) []Violation {
	rel := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	var out []Violation
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok || from == "" {
			continue
		}
		seen := map[string]bool{}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				to, ok := rel(imp)
				if !ok || to == from || seen[to] {
					continue
				}
				seen[to] = true
				if ok, rule := allowed(from, to, test); !ok {
					out = append(out, Violation{From: from, To: to, Test: test, Rule: rule})
				}
			}
		}
		check(p.Imports, false)
		check(append(append([]string(nil), p.TestImports...), p.XTestImports...), true)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// Decode reads a stream of `go list -json` objects.
func Decode(r io.Reader) ([]Package, error) {
	dec := json.NewDecoder(r)
	var out []Package
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
}

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	mod, err := exec.Command("go", "list", "-C", dir, "-m").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "archcheck: go list -m: %v\n", err)
		os.Exit(2)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-C", dir, "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "archcheck: go list: %v\n%s", err, stderr.Bytes())
		os.Exit(2)
	}
	pkgs, err := Decode(bytes.NewReader(out))
	if err != nil {
		fmt.Fprintf(os.Stderr, "archcheck: decoding go list: %v\n", err)
		os.Exit(2)
	}
	vs := Check(strings.TrimSpace(string(mod)), pkgs)
	for _, v := range vs {
		fmt.Println(v)
	}
	if len(vs) > 0 {
		fmt.Fprintf(os.Stderr, "archcheck: %d wrong-way imports (rules: go doc ./tools/archcheck)\n", len(vs))
		os.Exit(1)
	}
}
