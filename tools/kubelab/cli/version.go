package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/onsi/ginkgo/v2"
	"github.com/spf13/cobra"
)

// Version is kubelab's version, set at build time with
// -ldflags "-X github.com/kubelab/kubelab/tools/kubelab/cli.Version=v1.2.3".
// When it is not set, VersionString falls back to the module's build
// information.
var Version = ""

// VersionString returns kubelab's version, the VCS revision when the build
// recorded one, the Go version and the platform.
func VersionString() string {
	v := Version
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev != "" {
		v += " (" + rev + ")"
	}
	return fmt.Sprintf("kubelab %s, %s %s/%s, ginkgo %s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, ginkgo.GINKGO_VERSION)
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kubelab's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), VersionString())
		},
	}
}
