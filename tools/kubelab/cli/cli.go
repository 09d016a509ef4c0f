// Package cli is the kubelab command tree. It is importable so that a third
// party can build its own kubelab with its plugins added:
//
//	func main() {
//		process.RunInitIfRequested() // container shims and inits: run, exit
//		reg := builtin.Registry()
//		spec.MustRegister(reg.RegisterStore(myplugin.Plugin()))
//		spec.MustRegister(reg.RegisterProfile(myProfile)) // scheduler profiles too
//		runner.RunChildIfRequested(reg) // conformance children: run, exit
//		os.Exit(cli.Main(reg))
//	}
//
// process.RunInitIfRequested comes first: the process runtime (a built-in)
// re-executes the binary as each container's shim and init, which must
// start before anything else runs. The call to runner.RunChildIfRequested
// comes next, with the same Registry: `kubelab conform` re-executes the
// binary once per suite and target. examples/ownplugin is a whole module
// built this way.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/spec"
)

// Exit codes of Main.
const (
	// ExitOK: the command succeeded; for conform, nothing failed.
	ExitOK = 0
	// ExitFailed: a conformance spec failed, a child crashed, or the golden
	// list is out of sync.
	ExitFailed = 1
	// ExitUsage: bad flags or arguments, or a run that could not be set up.
	ExitUsage = 2
)

// exitError carries an exit code through cobra without a message of its own
// (what went wrong has been printed already).
type exitError struct{ code int }

// Error says which exit code the command chose.
func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// Main runs the kubelab command with os.Args and returns the process exit
// code (ExitOK, ExitFailed or ExitUsage). SIGINT and SIGTERM cancel the
// running command, which then stops its children and writes what it has.
func Main(reg *spec.Registry) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Execute(ctx, NewRootCommand(reg), os.Args[1:])
}

// Execute runs cmd with args and returns the exit code, printing errors to
// cmd's error stream.
func Execute(ctx context.Context, cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(cmd.ErrOrStderr(), "kubelab: %v\n", err)
		return ExitUsage
	}
}

// NewRootCommand returns the kubelab command tree over the plugins in reg,
// with the built-in conformance suites.
func NewRootCommand(reg *spec.Registry) *cobra.Command {
	return NewRootCommandWithRunner(&runner.Runner{Registry: reg})
}

// NewRootCommandWithRunner returns the kubelab command tree whose conform
// command runs r (its Registry, Suites and Executable). The binary that r
// re-executes must call r.RunChildIfRequested first.
func NewRootCommandWithRunner(r *runner.Runner) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubelab",
		Short: "kubelab: the Kubernetes architecture, small enough to read and real enough to test against",
		Long: `kubelab is a pluggable reference implementation of the Kubernetes architecture
and a conformance harness for its replaceable parts: the store, the scheduler
policy, the container runtime and the service proxy.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newConformCommand(r), newPluginsCommand(r.Registry), newVersionCommand(), newRuntimeCommand(r.Registry))
	root.AddCommand(newImageCommand())
	root.AddCommand(newAPIServerCommand(r.Registry))
	root.AddCommand(newSchedulerCommand(r.Registry), newExplainCommand())
	root.AddCommand(newControllerManagerCommand())
	root.AddCommand(newBenchCommand(r.Registry))
	root.AddCommand(newProxyCommand(r.Registry))
	root.AddCommand(newNodeCommand(r.Registry))
	return root
}

// fprintf writes to w, ignoring errors: a closed terminal is no reason to
// fail a conformance run.
func fprintf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
