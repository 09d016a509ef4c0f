package cli

import (
	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/spec"
)

// newBenchCommand is `kubelab bench`: one subcommand per benchmarked
// component, each printing a table and optionally writing JSON.
func newBenchCommand(reg *spec.Registry) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark kubelab's components (and upstream ones, with the same workload)",
		Long: `bench runs a component under a realistic load from real clients and prints
its figures as a table (--json for a file). Tests never assert on speed;
this is where speed is measured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchAPIServerCommand(reg))
	cmd.AddCommand(newBenchRuntimeCommand())
	cmd.AddCommand(newBenchSchedulerCommand(reg))
	return cmd
}
