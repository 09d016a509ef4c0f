package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// Files written into a report directory by WriteDir.
const (
	// ReportJSONFile holds WriteJSON's output; ReadReport reads it.
	ReportJSONFile = "report.json"
	// ReportMarkdownFile holds WriteMarkdown's output.
	ReportMarkdownFile = "report.md"
	// ReportHTMLFile holds WriteHTML's output.
	ReportHTMLFile = "report.html"
)

// WriteDir writes report.json, report.md and report.html into dir, creating
// it if needed.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{ReportJSONFile, r.WriteJSON},
		{ReportMarkdownFile, r.WriteMarkdown},
		{ReportHTMLFile, r.WriteHTML},
	} {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteJSON writes the report as indented JSON, the form ReadReport reads.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// verdict is the one-line result of the whole report.
func (r *Report) verdict() string {
	c := r.Counts()
	var parts []string
	if r.DryRun {
		parts = append(parts, fmt.Sprintf("%d specs listed", c.Listed))
	} else {
		parts = append(parts, fmt.Sprintf("%d passed", c.Passed), fmt.Sprintf("%d failed", c.Failed), fmt.Sprintf("%d skipped", c.Skipped))
		if c.Pending > 0 {
			parts = append(parts, fmt.Sprintf("%d pending", c.Pending))
		}
	}
	if r.Interrupted {
		parts = append(parts, "interrupted")
	}
	return strings.Join(parts, ", ")
}

func (r *Report) result() string {
	switch {
	case r.DryRun:
		return "LISTED"
	case r.Failed():
		return "FAILED"
	}
	return "PASSED"
}

// cellText renders a cell for people: with symbols for Markdown and HTML,
// in plain words for terminals.
func cellText(c Cell, symbols bool) string {
	mark := map[CellStatus][2]string{
		CellPassed:  {"✅", "PASS"},
		CellFailed:  {"❌", "FAIL"},
		CellSkipped: {"⏭", "SKIP"},
		CellListed:  {"📋", "LIST"},
	}
	m, ok := mark[c.Status]
	if !ok {
		return "—"
	}
	sym := m[1]
	if symbols {
		sym = m[0]
	}
	switch c.Status {
	case CellFailed:
		return fmt.Sprintf("%s %d/%d failed", sym, c.Failed, c.Failed+c.Passed+c.Skipped)
	case CellPassed:
		s := fmt.Sprintf("%s %d passed", sym, c.Passed)
		if c.Skipped > 0 {
			s += fmt.Sprintf(", %d skipped", c.Skipped)
		}
		return s
	case CellListed:
		return fmt.Sprintf("%s %d", sym, c.Listed)
	}
	if c.AllUnclaimed() {
		return fmt.Sprintf("%s %d skipped (unclaimed)", sym, c.Skipped)
	}
	return fmt.Sprintf("%s %d skipped", sym, c.Skipped)
}

// WriteText writes the capability × target matrices as plain, aligned text
// for a terminal, followed by a one-line verdict.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range r.Matrices() {
		fmt.Fprintf(tw, "\n%s suite\t%s\t\n", m.Suite, strings.Join(m.Targets, "\t"))
		for i, capability := range m.Capabilities {
			cells := make([]string, len(m.Targets))
			for j := range m.Targets {
				cells[j] = cellText(m.Cells[i][j], false)
			}
			fmt.Fprintf(tw, "  %s\t%s\t\n", capability, strings.Join(cells, "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Failures() {
		fmt.Fprintf(w, "\nFAILED %s [%s] %s\n", f.Suite, f.Target, f.Spec.Name)
		if f.Spec.Location != "" {
			fmt.Fprintf(w, "  at %s\n", f.Spec.Location)
		}
		if f.Spec.Message != "" {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(truncate(f.Spec.Message, 20), "\n", "\n  "))
		}
	}
	// The last line is the plain "conformance: N passed, N failed, N skipped"
	// that CI systems read as a test runner's closing line.
	_, err := fmt.Fprintf(w, "\nConformance %s\nconformance: %s\n", r.result(), r.verdict())
	return err
}

// truncate keeps the first n lines of s.
func truncate(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… (%d more lines)", len(lines)-n)
}

// mdEscape makes s safe inside a Markdown table cell or line.
func mdEscape(s string) string {
	r := strings.NewReplacer(
		`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`,
		"<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`, "\n", " ",
	)
	return r.Replace(s)
}

// mdCode renders s as inline code that survives any backticks in s.
func mdCode(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + strings.ReplaceAll(s, "|", `\|`) + pad + fence
}

// mdBlock renders s as a fenced code block that survives any fence in s.
func mdBlock(s string) string {
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence + "text\n" + strings.TrimRight(s, "\n") + "\n" + fence + "\n"
}

// WriteMarkdown writes a summary for people: per suite, a matrix with a row
// per capability and a column per target (✅ passed, ❌ failed, ⏭ skipped,
// with counts), then every failure with its spec, target and message.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# kubelab conformance report\n\n")
	mark := "✅"
	switch {
	case r.DryRun:
		mark = "📋"
	case r.Failed():
		mark = "❌"
	}
	fmt.Fprintf(&b, "**%s %s** — %s\n\n", mark, r.result(), r.verdict())
	fmt.Fprintf(&b, "Started %s, took %s. Seed %d.", r.StartTime.UTC().Format(time.RFC3339), r.EndTime.Sub(r.StartTime).Round(time.Second), r.Seed)
	if r.LabelFilter != "" {
		fmt.Fprintf(&b, " Label filter %s.", mdCode(r.LabelFilter))
	}
	for _, f := range r.Focus {
		fmt.Fprintf(&b, " Focus %s.", mdCode(f))
	}
	for _, s := range r.Skip {
		fmt.Fprintf(&b, " Skip %s.", mdCode(s))
	}
	if r.RerunOf != "" {
		fmt.Fprintf(&b, " Rerun of the failures in %s.", mdCode(r.RerunOf))
	}
	b.WriteString("\n")
	for _, m := range r.Matrices() {
		fmt.Fprintf(&b, "\n## %s suite\n\n", mdEscape(m.Suite))
		b.WriteString("| capability |")
		for _, t := range m.Targets {
			fmt.Fprintf(&b, " %s |", mdEscape(t))
		}
		b.WriteString("\n| --- |")
		for range m.Targets {
			b.WriteString(" --- |")
		}
		b.WriteString("\n")
		for i, capability := range m.Capabilities {
			fmt.Fprintf(&b, "| %s |", mdCode(capability))
			for j := range m.Targets {
				fmt.Fprintf(&b, " %s |", cellText(m.Cells[i][j], true))
			}
			b.WriteString("\n")
		}
	}
	failures := r.Failures()
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\n## Failures (%d)\n", len(failures))
		for _, f := range failures {
			fmt.Fprintf(&b, "\n### ❌ \\[%s\\] %s\n\n", mdEscape(f.Target), mdEscape(f.Spec.Name))
			fmt.Fprintf(&b, "Suite **%s**, target **%s**, capability %s, state %s", mdEscape(f.Suite), mdEscape(f.Target), mdCode(f.Spec.Capability), f.Spec.State)
			if f.Spec.Location != "" {
				fmt.Fprintf(&b, ", at %s", mdCode(f.Spec.Location))
			}
			b.WriteString(".\n\n")
			if f.Spec.Message != "" {
				b.WriteString(mdBlock(f.Spec.Message))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"cell": func(c Cell) string { return cellText(c, true) },
	"rfc3339": func(t time.Time) string {
		return t.UTC().Format(time.RFC3339)
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kubelab conformance report — {{.Result}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1f2328; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .4rem .8rem; border-radius: 6px; display: inline-block; }
.verdict.PASSED { background: #dafbe1; color: #116329; }
.verdict.FAILED { background: #ffebe9; color: #a40e26; }
.verdict.LISTED { background: #ddf4ff; color: #0a3069; }
.meta { color: #59636e; font-size: .9rem; margin: .6rem 0; }
table { border-collapse: collapse; margin-top: .5rem; }
th, td { border: 1px solid #d1d9e0; padding: .35rem .7rem; text-align: left; white-space: nowrap; }
th { background: #f6f8fa; }
td.cap { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
td.passed { background: #dafbe1; }
td.failed { background: #ffebe9; font-weight: 600; }
td.skipped { background: #f6f8fa; color: #59636e; }
td.listed { background: #ddf4ff; }
.failure { border-left: 4px solid #cf222e; padding: .2rem 1rem; margin: 1rem 0; }
.failure h3 { font-size: 1rem; margin: .4rem 0; }
pre { background: #f6f8fa; padding: .7rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
</style>
</head>
<body>
<h1>kubelab conformance report</h1>
<div class="verdict {{.Result}}">{{.Result}} — {{.Verdict}}</div>
<p class="meta">Started {{rfc3339 .R.StartTime}}, took {{.Took}}. Seed {{.R.Seed}}.
{{- with .R.LabelFilter}} Label filter <code>{{.}}</code>.{{end}}
{{- range .R.Focus}} Focus <code>{{.}}</code>.{{end}}
{{- range .R.Skip}} Skip <code>{{.}}</code>.{{end}}
{{- with .R.RerunOf}} Rerun of the failures in <code>{{.}}</code>.{{end}}</p>
{{range $m := .Matrices}}
<h2>{{$m.Suite}} suite</h2>
<table>
<thead><tr><th>capability</th>{{range $m.Targets}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range $i, $cap := $m.Capabilities}}
<tr><td class="cap">{{$cap}}</td>{{range index $m.Cells $i}}<td class="{{.Status}}">{{cell .}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{end}}
{{with .Failures}}
<h2>Failures ({{len .}})</h2>
{{range .}}
<div class="failure">
<h3>❌ {{.Spec.Name}}</h3>
<p>Suite <b>{{.Suite}}</b>, target <b>{{.Target}}</b>, capability <code>{{.Spec.Capability}}</code>, state {{.Spec.State}}{{with .Spec.Location}}, at <code>{{.}}</code>{{end}}.</p>
{{with .Spec.Message}}<pre>{{.}}</pre>{{end}}
</div>
{{end}}
{{end}}
</body>
</html>
`))

// WriteHTML writes the same summary as WriteMarkdown as one self-contained
// HTML page (inline CSS, no scripts, every text escaped).
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlReport.Execute(w, struct {
		R        *Report
		Result   string
		Verdict  string
		Took     time.Duration
		Matrices []Matrix
		Failures []Failure
	}{r, r.result(), r.verdict(), r.EndTime.Sub(r.StartTime).Round(time.Second), r.Matrices(), r.Failures()})
}

// WriteJUnit writes a JUnit XML report for CI to path: one <testsuite> per
// suite and target (named "SUITE [TARGET]"), merged into one <testsuites>.
// It uses each child's Ginkgo report where the report came from Run, and
// reports synthesized from the spec results for a report read back with
// ReadReport.
func (r *Report) WriteJUnit(path string) error {
	tmp, err := os.MkdirTemp("", "kubelab-junit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cfg := reporters.JunitReportConfig{
		OmitTimelinesForSpecState: types.SpecStatePassed | types.SpecStateSkipped | types.SpecStatePending,
		OmitLeafNodeType:          true,
		OmitSuiteSetupNodes:       false,
	}
	var parts []string
	for i, gr := range r.ginkgoReports() {
		gr.SpecReports = keepForJUnit(gr.SpecReports)
		part := filepath.Join(tmp, fmt.Sprintf("%03d.xml", i))
		if err := reporters.GenerateJUnitReportWithConfig(gr, part, cfg); err != nil {
			return fmt.Errorf("writing JUnit for %s: %w", gr.SuiteDescription, err)
		}
		parts = append(parts, part)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if len(parts) == 0 {
		return os.WriteFile(path, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<testsuites tests="0" disabled="0" errors="0" failures="0" time="0"></testsuites>`+"\n"), 0o644)
	}
	msgs, err := reporters.MergeAndCleanupJUnitReports(parts, path)
	if err != nil {
		return fmt.Errorf("writing JUnit %s: %w", path, err)
	}
	if len(msgs) > 0 {
		return fmt.Errorf("writing JUnit %s: %s", path, strings.Join(msgs, "; "))
	}
	return nil
}

// keepForJUnit drops the specs that the filters deselected (Ginkgo reports
// them as skipped) and suite nodes that passed.
func keepForJUnit(specs types.SpecReports) types.SpecReports {
	var out types.SpecReports
	for _, sr := range specs {
		if sr.LeafNodeType == types.NodeTypeIt && deselected(sr) {
			continue
		}
		if sr.LeafNodeType != types.NodeTypeIt && !sr.State.Is(types.SpecStateFailureStates) {
			continue
		}
		out = append(out, sr)
	}
	return out
}
