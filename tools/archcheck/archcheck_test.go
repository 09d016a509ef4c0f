package main

import (
	"slices"
	"strings"
	"testing"
)

const mod = "example.com/m"

func pkg(path string, imports, tests []string) Package {
	q := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			if strings.Contains(p, ".") {
				out = append(out, p) // outside the module
			} else {
				out = append(out, mod+"/"+p)
			}
		}
		return out
	}
	return Package{ImportPath: mod + "/" + path, Imports: q(imports), XTestImports: q(tests)}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkg  Package
		want []string // "from → to" of the expected violations
	}{
		{"spec imports spec", pkg("spec/sub", []string{"spec", "k8s.io/api/core/v1"}, []string{"spec/sub"}), nil},
		{"spec imports a plugin", pkg("spec", []string{"plugins/store/memory"}, nil), []string{"spec → plugins/store/memory"}},
		{"spec test imports reference", pkg("spec/sub", nil, []string{"reference/x"}), []string{"spec/sub → reference/x"}},
		{"plugin shares its family's helpers", pkg("plugins/scheduler/a", []string{"spec", "plugins/scheduler/pluginhelper"}, nil), nil},
		{"plugin imports another family", pkg("plugins/runtime/cri", []string{"plugins/store/memory"}, nil), []string{"plugins/runtime/cri → plugins/store/memory"}},
		{"plugin test imports conformance", pkg("plugins/runtime/cri", nil, []string{"conformance/containerd"}), []string{"plugins/runtime/cri → conformance/containerd"}},
		{"plugin imports tools", pkg("plugins/runtime/process", []string{"tools/ociimage"}, nil), []string{"plugins/runtime/process → tools/ociimage"}},
		{"builtin wires every plugin", pkg("plugins/builtin", []string{"plugins/store/memory", "plugins/runtime/process", "spec"}, nil), nil},
		{"reference imports a plugin", pkg("reference/apiserver/apiservertest", []string{"plugins/store/memory"}, nil), []string{"reference/apiserver/apiservertest → plugins/store/memory"}},
		{"reference test hands a plugin in", pkg("reference/apiserver", []string{"spec"}, []string{"plugins/store/memory", "fakes/x"}), nil},
		{"reference test imports tools", pkg("reference/scheduler", nil, []string{"tools/extender"}), []string{"reference/scheduler → tools/extender"}},
		{"reference imports conformance", pkg("reference/scheduler", []string{"conformance/harness"}, nil), []string{"reference/scheduler → conformance/harness"}},
		{"fake wraps a plugin", pkg("fakes/brokenscheduler", []string{"plugins/scheduler/profiles", "spec"}, nil), nil},
		{"fake imports reference", pkg("fakes/x", []string{"reference/scheduler"}, nil), []string{"fakes/x → reference/scheduler"}},
		{"conformance imports a plugin", pkg("conformance/runner", []string{"plugins/runtime/process", "conformance/harness"}, nil), []string{"conformance/runner → plugins/runtime/process"}},
		{"conformance imports reference", pkg("conformance/apiserver", []string{"reference/apiserver"}, nil), []string{"conformance/apiserver → reference/apiserver"}},
		{"conformance imports tools", pkg("conformance/containerd", []string{"tools/ociimage"}, nil), []string{"conformance/containerd → tools/ociimage"}},
		{"conformance meta-test wires parts", pkg("conformance/store", nil, []string{"fakes/brokenstore", "plugins/store/memory", "reference/apiserver"}), nil},
		{"conformance test imports tools", pkg("conformance/scheduler", nil, []string{"tools/extender"}), []string{"conformance/scheduler → tools/extender"}},
		{"tools import anything", pkg("tools/kubelab", []string{"conformance/runner", "reference/apiserver", "plugins/builtin", "fakes/x"}, nil), nil},
		{"unknown area", pkg("util", []string{"spec"}, nil), []string{"util → spec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, v := range Check(mod, []Package{tc.pkg}) {
				got = append(got, v.From+" → "+v.To)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Check = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDecode reads the format `go list -json` writes: concatenated objects.
func TestDecode(t *testing.T) {
	in := `{"ImportPath": "example.com/m/spec"}
{"ImportPath": "example.com/m/plugins/a", "Imports": ["example.com/m/tools/x"], "TestImports": ["example.com/m/spec"]}`
	pkgs, err := Decode(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || pkgs[1].Imports[0] != "example.com/m/tools/x" || pkgs[1].TestImports[0] != "example.com/m/spec" {
		t.Fatalf("Decode = %+v", pkgs)
	}
	vs := Check(mod, pkgs)
	if len(vs) != 1 || vs[0].String() != "plugins/a → tools/x: plugins/a/... imports only spec/... and plugins/a/..." {
		t.Fatalf("Check = %v", vs)
	}
}
