package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// GoldenEntry is one entry of the golden list of conformance specs
// (conformance/conformance.yaml): every spec of every suite, named by its
// full text, with the behaviour it requires written as MUST statements.
type GoldenEntry struct {
	// Suite is the suite's name ("store").
	Suite string `json:"suite"`
	// Name is the spec's full text.
	Name string `json:"name"`
	// Capability is the spec's capability label.
	Capability string `json:"capability"`
	// Labels are the spec's labels.
	Labels []string `json:"labels,omitempty"`
	// Description states what the spec requires, as MUST statements.
	Description string `json:"description"`
}

// LoadGolden reads a golden list: a YAML sequence of entries, or a mapping
// whose only sequence-valued key holds them.
func LoadGolden(path string) ([]GoldenEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading golden list: %w", err)
	}
	return ParseGolden(data)
}

// ParseGolden parses the YAML of a golden list (see LoadGolden).
func ParseGolden(data []byte) ([]GoldenEntry, error) {
	var entries []GoldenEntry
	if err := yaml.UnmarshalStrict(data, &entries); err == nil {
		return entries, nil
	}
	var wrapped map[string]any
	if err := yaml.Unmarshal(data, &wrapped); err != nil {
		return nil, fmt.Errorf("golden list: %w", err)
	}
	var lists []string
	for k, v := range wrapped {
		if _, ok := v.([]any); ok {
			lists = append(lists, k)
		}
	}
	if len(lists) != 1 {
		return nil, fmt.Errorf("golden list: want a sequence of entries, or a mapping with one sequence of entries (found sequences under %v)", lists)
	}
	inner, err := yaml.Marshal(wrapped[lists[0]])
	if err != nil {
		return nil, fmt.Errorf("golden list: %w", err)
	}
	if err := yaml.UnmarshalStrict(inner, &entries); err != nil {
		return nil, fmt.Errorf("golden list, under %q: %w", lists[0], err)
	}
	return entries, nil
}

// GoldenFromReport returns a golden entry (without description) for every
// spec of a report, once per suite even when several targets list it,
// sorted by suite and name. Give it a listing (Options.List) without filters
// to get every spec.
func GoldenFromReport(r *Report) []GoldenEntry {
	seen := map[[2]string]bool{}
	var out []GoldenEntry
	for _, s := range r.Suites {
		for _, t := range s.Targets {
			for _, sp := range t.Specs {
				key := [2]string{s.Name, sp.Name}
				if sp.Capability == SuiteRow || seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, GoldenEntry{
					Suite:      s.Name,
					Name:       sp.Name,
					Capability: sp.Capability,
					Labels:     slices.Clone(sp.Labels),
				})
			}
		}
	}
	sortGolden(out)
	return out
}

func sortGolden(es []GoldenEntry) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Suite != es[j].Suite {
			return es[i].Suite < es[j].Suite
		}
		return es[i].Name < es[j].Name
	})
}

// GoldenDiff is how a golden list and the specs in the code disagree.
type GoldenDiff struct {
	// Missing are specs in the code that the list lacks: entries to add.
	Missing []GoldenEntry
	// Extra are entries naming no spec in the code: entries to remove.
	Extra []GoldenEntry
	// Mismatched describe entries whose capability or labels differ from
	// the code's.
	Mismatched []string
	// Invalid describe entries that are malformed: duplicated, or with an
	// empty description or one without "MUST".
	Invalid []string
}

// Empty reports whether the list and the code agree.
func (d GoldenDiff) Empty() bool {
	return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.Mismatched) == 0 && len(d.Invalid) == 0
}

// CompareGolden checks the golden entries against the specs in code (as
// GoldenFromReport returns them). Only the suites present in code are
// checked: entries of other suites are left alone.
func CompareGolden(golden, code []GoldenEntry) GoldenDiff {
	var d GoldenDiff
	suites := map[string]bool{}
	inCode := map[[2]string]GoldenEntry{}
	for _, e := range code {
		suites[e.Suite] = true
		inCode[[2]string{e.Suite, e.Name}] = e
	}
	inGolden := map[[2]string]bool{}
	for _, g := range golden {
		key := [2]string{g.Suite, g.Name}
		if inGolden[key] {
			d.Invalid = append(d.Invalid, fmt.Sprintf("%s: %q is listed twice", g.Suite, g.Name))
			continue
		}
		inGolden[key] = true
		switch {
		case strings.TrimSpace(g.Description) == "":
			d.Invalid = append(d.Invalid, fmt.Sprintf("%s: %q has an empty description", g.Suite, g.Name))
		case !strings.Contains(g.Description, "MUST"):
			d.Invalid = append(d.Invalid, fmt.Sprintf("%s: %q: its description states no MUST requirement", g.Suite, g.Name))
		}
		if !suites[g.Suite] {
			continue
		}
		c, ok := inCode[key]
		if !ok {
			d.Extra = append(d.Extra, g)
			continue
		}
		if c.Capability != g.Capability {
			d.Mismatched = append(d.Mismatched, fmt.Sprintf("%s: %q: capability is %q in the code, %q in the list", g.Suite, g.Name, c.Capability, g.Capability))
		}
		if g.Labels != nil && !sameSet(c.Labels, g.Labels) {
			d.Mismatched = append(d.Mismatched, fmt.Sprintf("%s: %q: labels are %v in the code, %v in the list", g.Suite, g.Name, sorted(c.Labels), sorted(g.Labels)))
		}
	}
	for _, c := range code {
		if !inGolden[[2]string{c.Suite, c.Name}] {
			d.Missing = append(d.Missing, c)
		}
	}
	sortGolden(d.Missing)
	sortGolden(d.Extra)
	return d
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Compact(sorted(a)), slices.Compact(sorted(b)))
}

// GoldenPlaceholder is the description MissingYAML gives new entries. It
// holds no "MUST", so the sync check fails until someone writes the real
// requirement.
const GoldenPlaceholder = "TODO: what must a plugin do to pass this spec? Write it as RFC 2119 requirements."

// MissingYAML renders entries (typically GoldenDiff.Missing) as YAML
// sequence items to paste into the golden list, with GoldenPlaceholder
// where a description is empty.
func MissingYAML(entries []GoldenEntry) ([]byte, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	es := slices.Clone(entries)
	for i := range es {
		if es[i].Description == "" {
			es[i].Description = GoldenPlaceholder
		}
	}
	// Written by hand rather than by a YAML encoder, which orders keys
	// alphabetically and folds long lines: entries read best with suite and
	// name first, and every value a one-line double-quoted (JSON) string,
	// which YAML reads as it is.
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "- suite: %s\n", jsonQuote(e.Suite))
		fmt.Fprintf(&b, "  name: %s\n", jsonQuote(e.Name))
		fmt.Fprintf(&b, "  capability: %s\n", jsonQuote(e.Capability))
		if len(e.Labels) > 0 {
			q := make([]string, len(e.Labels))
			for i, l := range e.Labels {
				q[i] = jsonQuote(l)
			}
			fmt.Fprintf(&b, "  labels: [%s]\n", strings.Join(q, ", "))
		}
		fmt.Fprintf(&b, "  description: %s\n", jsonQuote(e.Description))
	}
	return []byte(b.String()), nil
}

// jsonQuote returns s as a JSON string, which is also a YAML double-quoted
// scalar.
func jsonQuote(s string) string {
	q, err := json.Marshal(s)
	if err != nil { // a Go string always marshals
		panic(err)
	}
	return string(q)
}

// String explains the differences: what to add to the golden list and what
// to remove from it, and what to fix.
func (d GoldenDiff) String() string {
	var b strings.Builder
	if len(d.Missing) > 0 {
		fmt.Fprintf(&b, "%d specs are missing from the golden list; add (and describe with MUST statements):\n", len(d.Missing))
		y, err := MissingYAML(d.Missing)
		if err != nil {
			fmt.Fprintf(&b, "  (rendering YAML: %v)\n", err)
		}
		b.Write(y)
	}
	if len(d.Extra) > 0 {
		fmt.Fprintf(&b, "%d entries of the golden list name no spec in the code; remove:\n", len(d.Extra))
		for _, e := range d.Extra {
			fmt.Fprintf(&b, "  - suite %s, name %q\n", e.Suite, e.Name)
		}
	}
	if len(d.Mismatched) > 0 {
		fmt.Fprintf(&b, "%d entries disagree with the code; fix:\n", len(d.Mismatched))
		for _, m := range d.Mismatched {
			fmt.Fprintf(&b, "  - %s\n", m)
		}
	}
	if len(d.Invalid) > 0 {
		fmt.Fprintf(&b, "%d entries are malformed; fix:\n", len(d.Invalid))
		for _, m := range d.Invalid {
			fmt.Fprintf(&b, "  - %s\n", m)
		}
	}
	return b.String()
}
