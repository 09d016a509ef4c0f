package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/conformance/runner/runnertest"
	"github.com/kubelab/kubelab/fakes/brokenstore"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

// TestMain makes this test binary a conformance child of the fake suite
// when the conform command re-executes it.
func TestMain(m *testing.M) {
	fakeRunner().RunChildIfRequested()
	os.Exit(m.Run())
}

func fakeRunner() *runner.Runner {
	return &runner.Runner{Registry: builtin.Registry(), Suites: []runner.Suite{runnertest.Suite()}}
}

// kubelab runs the command tree over the fake suite and returns its exit
// code, stdout, stderr and the fake spec bodies that ran.
func kubelab(t *testing.T, args ...string) (int, string, string, []string) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "marker")
	t.Setenv(runnertest.MarkerEnv, marker)
	cmd := cli.NewRootCommandWithRunner(fakeRunner())
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	code := cli.Execute(context.Background(), cmd, args)
	return code, out.String(), errOut.String(), runnertest.Ran(marker)
}

func TestConformPassingExitsZero(t *testing.T) {
	code, out, errOut, ran := kubelab(t, "conform", "--target", "fake=good")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	if len(ran) != 4 || !strings.Contains(out, "Conformance PASSED") || !strings.Contains(out, "PASS 2 passed") {
		t.Errorf("ran %v; output:\n%s", ran, out)
	}
	// CI reads the last line as the runner's closing line.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^conformance: \d+ passed, \d+ failed, \d+ skipped$`).MatchString(last) {
		t.Errorf("last line %q is not \"conformance: N passed, N failed, N skipped\"", last)
	}
}

func TestConformFailingExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	junit := filepath.Join(dir, "junit.xml")
	code, out, errOut, _ := kubelab(t, "conform", "--suite", "fake", "--target", "fake=good,bad",
		"--report", dir, "--junit", junit, "--timeout", "5m", "--seed", "7")
	if code != cli.ExitFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, cli.ExitFailed, out, errOut)
	}
	for _, want := range []string{"=== fake suite, target bad ===", "Random Seed: 7", "FAIL 1/2 failed", "Conformance FAILED"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"report.json", "report.md", "report.html", "junit.xml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(data), "round-trips values") {
			t.Errorf("%s lacks the failure (%v)", f, err)
		}
	}
	if !strings.Contains(errOut, "report.md") || !strings.Contains(errOut, junit) {
		t.Errorf("stderr does not say where the reports are:\n%s", errOut)
	}

	// --rerun-failed runs the two failures only, and they fail again.
	code, _, _, ran := kubelab(t, "conform", "--rerun-failed", dir)
	if code != cli.ExitFailed || len(ran) != 2 {
		t.Errorf("rerun: exit %d, ran %v; want 1 and the 2 failed specs", code, ran)
	}
}

func TestConformListRunsNothing(t *testing.T) {
	code, out, _, ran := kubelab(t, "conform", "--list", "--target", "fake=good,crash")
	if code != cli.ExitOK || len(ran) != 0 {
		t.Fatalf("list: exit %d, ran %v\n%s", code, ran, out)
	}
	for _, want := range []string{
		"fake suite: 4 specs, targets good, crash",
		"  [fake:ttl] fake honours TTLs {Slow}",
		"  [fake:basic] fake round-trips values",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Running Suite") {
		t.Errorf("list shows the children's progress:\n%s", out)
	}
}

func TestConformListGolden(t *testing.T) {
	golden := filepath.Join(t.TempDir(), "conformance.yaml")
	// Bootstrapping: no file yet, every spec is printed.
	code, out, errOut, _ := kubelab(t, "conform", "--list", "--golden", "--golden-file", golden, "--target", "fake=good")
	if code != cli.ExitFailed || strings.Count(out, `- suite: "fake"`) != 4 {
		t.Fatalf("bootstrap: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	entries, err := runner.ParseGolden([]byte(out))
	if err != nil || len(entries) != 4 {
		t.Fatalf("printed entries do not parse back: %v (%d)", err, len(entries))
	}
	for i := range entries {
		entries[i].Description = "The plugin MUST do what the spec says."
	}
	var y strings.Builder
	for _, e := range entries[1:] {
		y.WriteString("- suite: " + e.Suite + "\n  name: " + jsonString(e.Name) + "\n  capability: " + e.Capability + "\n  description: " + e.Description + "\n")
	}
	if err := os.WriteFile(golden, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _, _ = kubelab(t, "conform", "--list", "--golden", "--golden-file", golden, "--target", "fake=good")
	if code != cli.ExitFailed || strings.Count(out, `- suite: "fake"`) != 1 || !strings.Contains(out, entries[0].Name) {
		t.Errorf("one missing entry: exit %d\n%s", code, out)
	}

	y.WriteString("- suite: fake\n  name: " + jsonString(entries[0].Name) + "\n  capability: " + entries[0].Capability + "\n  description: It MUST.\n")
	if err := os.WriteFile(golden, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut, _ = kubelab(t, "conform", "--list", "--golden", "--golden-file", golden, "--target", "fake=good")
	if code != cli.ExitOK || out != "" || !strings.Contains(errOut, "in sync") {
		t.Errorf("in sync: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestConformBadUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown flag":        {"conform", "--nope"},
		"unknown suite":       {"conform", "--suite", "nope"},
		"unknown target":      {"conform", "--target", "fake=nope"},
		"malformed --target":  {"conform", "--target", "fake"},
		"golden without list": {"conform", "--golden"},
		"bad label filter":    {"conform", "--label-filter", "(("},
		"extra argument":      {"conform", "store"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errOut, ran := kubelab(t, args...)
			if code != cli.ExitUsage || len(ran) != 0 {
				t.Errorf("exit %d, ran %v, want %d and nothing; stderr:\n%s", code, ran, cli.ExitUsage, errOut)
			}
		})
	}
}

func TestPluginsListsBuiltins(t *testing.T) {
	code, out, _, _ := kubelab(t, "plugins")
	if code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"store plugins:", "memory", "etcd", "store:ttl", "scheduler plugins:", "proxy plugins:", "nftables", "proxy:hairpin"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugins lacks %q:\n%s", want, out)
		}
	}
	code, out, _, _ = kubelab(t, "plugins", "-o", "json")
	var infos []cli.PluginInfo
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &infos) != nil || len(infos) != len(builtin.StorePlugins())+len(builtin.RuntimePlugins())+len(builtin.SchedulerPlugins())+len(builtin.SchedulerProfiles())+len(builtin.ProxyPlugins()) {
		t.Fatalf("plugins -o json: exit %d\n%s", code, out)
	}
	if infos[0].Contract != "store" || infos[0].Name != "etcd" {
		t.Errorf("first plugin = %+v", infos[0])
	}
}

// TestPluginsListsProfiles checks that `kubelab plugins` lists every
// registered scheduler profile, a third party's as well as the built-ins.
func TestPluginsListsProfiles(t *testing.T) {
	reg := builtin.Registry()
	spec.MustRegister(reg.RegisterProfile(spec.Profile{SchedulerName: "my-scheduler",
		Plugins: []spec.WeightedPlugin{{Name: "NodeName"}, {Name: "NodeResourcesFit", Weight: 3}}}))
	cmd := cli.NewRootCommand(reg)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if code := cli.Execute(context.Background(), cmd, []string{"plugins"}); code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"scheduler profiles", "default-scheduler", "my-scheduler", "NodeName, NodeResourcesFit(3)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plugins lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _, _ := kubelab(t, "version")
	if code != cli.ExitOK || !strings.HasPrefix(out, "kubelab ") || !strings.Contains(out, "ginkgo") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// TestPluginsHidesBrokenWithoutAll checks that `kubelab plugins` leaves the
// deliberately broken plugins out unless --all is given, in both formats,
// while they stay registered.
func TestPluginsHidesBrokenWithoutAll(t *testing.T) {
	reg := builtin.Registry()
	for _, p := range brokenstore.Plugins(memory.Plugin()) {
		spec.MustRegister(reg.RegisterStore(p))
	}
	broken := brokenstore.Plugins(memory.Plugin())[0].Name
	run := func(args ...string) string {
		t.Helper()
		cmd := cli.NewRootCommand(reg)
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		if code := cli.Execute(context.Background(), cmd, args); code != cli.ExitOK {
			t.Fatalf("kubelab %v: exit %d\n%s", args, code, errOut.String())
		}
		return out.String()
	}
	if out := run("plugins"); strings.Contains(out, broken) || !strings.Contains(out, "memory") ||
		!strings.Contains(out, fmt.Sprintf("(%d deliberately broken", len(brokenstore.Plugins(memory.Plugin())))) {
		t.Errorf("plugins:\n%s", out)
	}
	if out := run("plugins", "--all"); !strings.Contains(out, broken) || strings.Contains(out, "not shown") {
		t.Errorf("plugins --all:\n%s", out)
	}
	for _, all := range []bool{false, true} {
		args := []string{"plugins", "-o", "json"}
		if all {
			args = append(args, "--all")
		}
		var infos []cli.PluginInfo
		if err := json.Unmarshal([]byte(run(args...)), &infos); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range infos {
			if p.Broken() {
				n++
			}
		}
		if want := map[bool]int{false: 0, true: len(brokenstore.Plugins(memory.Plugin()))}[all]; n != want {
			t.Errorf("%v: %d broken plugins listed, want %d", args, n, want)
		}
	}
	if _, err := reg.Store(broken); err != nil {
		t.Errorf("the broken store is no longer registered: %v", err)
	}
}

// TestConformImagesSetsTheEnvironment: --images hands the runtime suite's
// image directory to the suites' children through KUBELAB_IMAGES.
func TestConformImagesSetsTheEnvironment(t *testing.T) {
	t.Setenv("KUBELAB_IMAGES", "")
	dir := t.TempDir()
	if code, _, errOut, _ := kubelab(t, "conform", "--target", "fake=good", "--images", dir); code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if got := os.Getenv("KUBELAB_IMAGES"); got != dir {
		t.Errorf("KUBELAB_IMAGES = %q, want %q", got, dir)
	}
}
