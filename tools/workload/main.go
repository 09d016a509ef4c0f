// Command workload is kubelab's test workload server, in the spirit of
// Kubernetes' agnhost: one static binary (build it with CGO_ENABLED=0) with
// a subcommand per behaviour the conformance suites need from a container.
//
//	workload serve-hostname [--port 9376] [--udp]   HTTP (and UDP) answer with the hostname (= pod name)
//	workload netexec [--http-port 8080] [--udp-port -1]
//	                                               HTTP: /echo?msg= /hostname /clientip /exit?code=N
//	                                               /dial?host=&port=&request=&protocol=http|udp&tries=N /healthz;
//	                                               no /shell: this image has no shell
//	workload pause                                 sleep until SIGTERM or SIGINT, exit 0; reap zombies as PID 1
//	workload sigterm-delay --seconds N             on SIGTERM, take N seconds to exit (0)
//	workload liveness [--port 8080]                /healthz 200 until /fail is requested, then 500
//	workload logs --lines N [--interval D] [--keep-running]
//	                                               N lines to stdout and N to stderr
//	workload exit --code N [--delay D]             exit with code N
//	workload alloc --mb N                          allocate and touch N MiB, then sleep (OOM tests)
//	workload print [ARGS...]                       print argv, working directory, uid/gid, hostname and
//	                                               the sorted environment, then exit 0 (env/args/workdir tests)
//
// When the binary is invoked under the name of a subcommand (a symlink
// called "pause", say) that subcommand runs, so the pause image can use it
// as /pause.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
)

// command is one subcommand: run parses args and runs until done, returning
// the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) int
}

// environment is the process's I/O and exits, injected so that commands
// can be tested.
type environment struct {
	stdout, stderr io.Writer
	// exit ends the process with a code (netexec's /exit).
	exit func(code int)
	// hostname returns the name to answer with.
	hostname func() (string, error)
}

var commands = map[string]command{
	"serve-hostname": {"HTTP (and UDP) servers that answer with the hostname", runServeHostname},
	"netexec":        {"HTTP server: echo, hostname, clientip, exit, dial, healthz", runNetexec},
	"pause":          {"sleep until SIGTERM or SIGINT, reaping zombies as PID 1", runPause},
	"sigterm-delay":  {"on SIGTERM, take --seconds to exit", runSigtermDelay},
	"liveness":       {"/healthz is 200 until /fail is requested, then 500", runLiveness},
	"logs":           {"write --lines lines to stdout and to stderr", runLogs},
	"exit":           {"exit with --code", runExit},
	"alloc":          {"allocate and touch --mb MiB of memory, then sleep", runAlloc},
	"print":          {"print argv, cwd, uid/gid, hostname and the environment", runPrint},
}

func main() {
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, exit: os.Exit, hostname: os.Hostname}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(dispatch(ctx, env, os.Args))
}

// dispatch picks the subcommand from argv[0]'s name or argv[1].
func dispatch(ctx context.Context, env *environment, argv []string) int {
	if len(argv) > 0 {
		if c, ok := commands[filepath.Base(argv[0])]; ok {
			return c.run(ctx, env, argv[1:])
		}
	}
	if len(argv) < 2 {
		usage(env.stderr)
		return 2
	}
	c, ok := commands[argv[1]]
	if !ok {
		if argv[1] == "-h" || argv[1] == "--help" || argv[1] == "help" {
			usage(env.stdout)
			return 0
		}
		fmt.Fprintf(env.stderr, "workload: unknown subcommand %q\n", argv[1])
		usage(env.stderr)
		return 2
	}
	return c.run(ctx, env, argv[2:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: workload SUBCOMMAND [flags]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].summary)
	}
}

// newFlags returns a flag set that reports errors to env.stderr.
func newFlags(env *environment, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

// parse parses args, returning the exit code to use when parsing failed.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2, false
	}
	return 0, true
}
