// Command kubelab runs kubelab's conformance suites and lists its plugins.
// See package github.com/kubelab/kubelab/tools/kubelab/cli for the commands,
// and for building a kubelab of your own with more plugins.
package main

import (
	"os"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

func main() {
	reg := builtin.Registry()
	// `kubelab conform` re-executes this binary once per suite and target;
	// in such a child this runs the suite and exits.
	runner.RunChildIfRequested(reg)
	os.Exit(cli.Main(reg))
}
