package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func runPause(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "pause")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if os.Getpid() == 1 {
		// As a PID namespace's init, adopt and reap orphans.
		chld := make(chan os.Signal, 16)
		signal.Notify(chld, syscall.SIGCHLD)
		defer signal.Stop(chld)
		go func() {
			for range chld {
				reapZombies()
			}
		}()
	}
	<-ctx.Done()
	fmt.Fprintln(env.stdout, "pause: signalled, exiting")
	return 0
}

// reapZombies waits for every exited child without blocking.
func reapZombies() int {
	n := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return n
		}
		n++
	}
}

func runSigtermDelay(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "sigterm-delay")
	seconds := fs.Float64("seconds", 10, "seconds to take to exit after SIGTERM")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *seconds < 0 {
		fmt.Fprintln(env.stderr, "sigterm-delay: --seconds must not be negative")
		return 2
	}
	fmt.Fprintf(env.stdout, "sigterm-delay: running; SIGTERM makes me exit after %gs\n", *seconds)
	<-ctx.Done()
	fmt.Fprintf(env.stdout, "sigterm-delay: got the signal, exiting in %gs\n", *seconds)
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	fmt.Fprintln(env.stdout, "sigterm-delay: exiting")
	return 0
}

func runLogs(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "logs")
	lines := fs.Int("lines", 10, "lines to write to stdout, and as many to stderr")
	interval := fs.Duration("interval", 0, "pause between lines")
	keep := fs.Bool("keep-running", false, "keep running after the last line until SIGTERM")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	for i := 1; i <= *lines; i++ {
		fmt.Fprintf(env.stdout, "stdout line %d\n", i)
		fmt.Fprintf(env.stderr, "stderr line %d\n", i)
		if *interval > 0 {
			select {
			case <-ctx.Done():
				return 0
			case <-time.After(*interval):
			}
		}
	}
	if *keep {
		<-ctx.Done()
	}
	return 0
}

func runExit(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "exit")
	code := fs.Int("code", 0, "exit code, 0..255")
	delay := fs.Duration("delay", 0, "wait this long first")
	if c, ok := parse(fs, args); !ok {
		return c
	}
	if *code < 0 || *code > 255 {
		fmt.Fprintln(env.stderr, "exit: --code must be 0..255")
		return 2
	}
	if *delay > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(*delay):
		}
	}
	fmt.Fprintf(env.stdout, "exiting with code %d\n", *code)
	return *code
}

// allocate returns mb MiB of memory with every page written, so that it is
// resident (and counted against a cgroup's memory limit).
func allocate(mb int) [][]byte {
	const page = 4096
	chunks := make([][]byte, 0, mb)
	for range mb {
		c := make([]byte, 1<<20)
		for i := 0; i < len(c); i += page {
			c[i] = 1
		}
		chunks = append(chunks, c)
	}
	return chunks
}

func runAlloc(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "alloc")
	mb := fs.Int("mb", 100, "MiB to allocate and touch")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *mb < 0 {
		fmt.Fprintln(env.stderr, "alloc: --mb must not be negative")
		return 2
	}
	mem := allocate(*mb)
	fmt.Fprintf(env.stdout, "alloc: holding %d MiB\n", len(mem))
	<-ctx.Done()
	// Keep mem reachable until the end.
	fmt.Fprintf(env.stdout, "alloc: released %d MiB\n", len(mem))
	return 0
}

// runPrint prints what a container was started with, one "key=value" line
// each: arg[i] (after "print"), cwd, uid, gid, hostname, then env lines
// "env:NAME=value", sorted. Flags are not parsed: every argument is printed.
func runPrint(ctx context.Context, env *environment, args []string) int {
	for i, a := range args {
		fmt.Fprintf(env.stdout, "arg[%d]=%s\n", i, a)
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "error: " + err.Error()
	}
	fmt.Fprintf(env.stdout, "cwd=%s\n", cwd)
	fmt.Fprintf(env.stdout, "uid=%d\n", os.Getuid())
	fmt.Fprintf(env.stdout, "gid=%d\n", os.Getgid())
	h, _ := env.hostname()
	fmt.Fprintf(env.stdout, "hostname=%s\n", h)
	vars := os.Environ()
	sort.Strings(vars)
	for _, v := range vars {
		fmt.Fprintf(env.stdout, "env:%s\n", v)
	}
	return 0
}
