package cli_test

import (
	"strings"
	"testing"

	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

func TestRuntimeCommandRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown plugin", []string{"runtime", "--runtime", "nope", "--root", t.TempDir()}, `runtime plugin "nope"`},
		{"option without a value", []string{"runtime", "--option", "pod-cidr", "--root", t.TempDir()}, "want key=value"},
		{"unknown option", []string{"runtime", "--option", "colour=blue", "--root", t.TempDir()}, `unknown option "colour"`},
		{"import of a missing file", []string{"runtime", "import", "--image-dir", t.TempDir(), "/no/such/archive.tar"}, "/no/such/archive.tar"},
		{"shim command run by hand", []string{"runtime", "process-shim", "/tmp"}, "not started by the process runtime"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut, _ := kubelab(t, c.args...)
			if code != cli.ExitUsage || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, cli.ExitUsage, c.want)
			}
		})
	}
}
