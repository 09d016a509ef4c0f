// Package etcdserver runs a real etcd server as a separate process for the
// conformance suites: the "etcd-server" store target runs the store suite
// against it through the etcd plugin in endpoints mode, which proves that the
// suite tests etcd's semantics and not kubelab's.
//
// A Server is one single-member etcd (by default Debian's /usr/bin/etcd) on
// free loopback ports, with its data in a temporary directory of its own
// (on tmpfs when the machine has /dev/shm), in its own process group.
package etcdserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec/freeport"
)

// DefaultBinary is the etcd executable used when Options.Binary is empty.
const DefaultBinary = "/usr/bin/etcd"

// MaxRequestBytes is the server's --max-request-bytes: 2 MiB, so that a
// value of spec.MaxValueSize (1.5 MiB, etcd's default limit for a whole
// request) fits with its key and transaction.
const MaxRequestBytes = 2 << 20

// ErrNoBinary is wrapped by Start's error when the etcd executable does not
// exist or cannot be run, so that a runner can skip the target rather than
// fail it.
var ErrNoBinary = errors.New("etcd binary not found")

// Options configure Start. The zero value runs DefaultBinary with its data
// on /dev/shm (or in os.TempDir() without it).
type Options struct {
	// Binary is the path of the etcd executable, or a name looked up in
	// PATH. Empty means DefaultBinary.
	Binary string
	// BaseDir is where the server's temporary data directory is created.
	// Empty means /dev/shm when it is a writable directory (tmpfs: fsync is
	// free), else os.TempDir().
	BaseDir string
	// Args are extra command-line flags appended to those Start sets (a
	// later flag overrides an earlier one).
	Args []string
	// Log, when set, receives the server's output (stdout and stderr; etcd
	// runs with --log-level=error). Start keeps the last few KiB of it
	// either way, to explain a failed start.
	Log io.Writer
	// StartTimeout bounds how long Start waits for the server to become
	// healthy; 0 means 30s. The ctx passed to Start bounds it too.
	StartTimeout time.Duration
}

// Server is a running etcd process. Its methods are safe for concurrent use.
type Server struct {
	cmd       *exec.Cmd
	dir       string
	endpoints []string
	output    *harness.TailBuffer

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // the process's exit status, set before exited closes

	stopOnce sync.Once
	stopErr  error
}

// bindAttempts bounds the restarts when a port picked as free was taken by
// another process before etcd bound it.
const bindAttempts = 8

// Start runs an etcd server and returns once it reports itself healthy. On
// error nothing it started is left running and its directory is removed. A
// missing executable is an error wrapping ErrNoBinary.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	bin, err := exec.LookPath(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("etcd server: %w: %v", ErrNoBinary, err)
	}
	if o.BaseDir == "" {
		o.BaseDir = defaultBaseDir()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, bin, o)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == bindAttempts {
			return nil, err
		}
	}
}

var errAddrInUse = errors.New("address already in use")

// start makes one attempt on freshly picked ports.
func start(ctx context.Context, bin string, o Options) (_ *Server, err error) {
	dir, err := os.MkdirTemp(o.BaseDir, "kubelab-etcd-server-")
	if err != nil {
		return nil, fmt.Errorf("etcd server: data dir: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	ports, err := freeport.Ports(2)
	if err != nil {
		return nil, fmt.Errorf("etcd server: picking ports: %w", err)
	}
	clientURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	peerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	args := []string{
		"--name=kubelab",
		"--data-dir=" + dir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubelab=" + peerURL,
		"--initial-cluster-token=" + filepath.Base(dir),
		"--initial-cluster-state=new",
		"--max-request-bytes=" + strconv.Itoa(MaxRequestBytes),
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=error",
	}
	args = append(args, o.Args...)

	s := &Server{
		dir:       dir,
		endpoints: []string{clientURL},
		output:    harness.NewTailBuffer(16 << 10),
		exited:    make(chan struct{}),
	}
	var out io.Writer = s.output
	if o.Log != nil {
		out = io.MultiWriter(s.output, o.Log)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so that Stop kills anything it forks too.
		Setpgid: true,
		// If this process dies without calling Stop, so does the server.
		// (Linux ties this to the thread that started it; Go keeps such
		// threads alive unless a goroutine exits while locked to one.)
		Pdeathsig: syscall.SIGKILL,
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("etcd server: starting %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitHealthy(ctx); err != nil {
		s.kill()
		if strings.Contains(s.output.String(), "address already in use") {
			return nil, fmt.Errorf("etcd server: %w", errAddrInUse)
		}
		return nil, fmt.Errorf("etcd server: %w; its output:\n%s", err, s.output.String())
	}
	return s, nil
}

// waitHealthy polls the server's /health endpoint until it answers
// {"health":"true"}, the process exits, or ctx ends.
func (s *Server) waitHealthy(ctx context.Context) error {
	// No keep-alive: each probe closes its connection, so nothing lingers.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if healthy(ctx, client, s.endpoints[0]+"/health") {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited while starting: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not healthy in time: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func healthy(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"health":"true"`))
}

// Endpoints returns the server's client URLs (one), for
// spec.StoreConfig.Endpoints. The caller owns the returned slice.
func (s *Server) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// DataDir returns the server's data directory, which Stop removes.
func (s *Server) DataDir() string { return s.dir }

// Pid returns the server's process id (also its process group id).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop kills the server's process group with SIGKILL, waits for the server
// to exit and removes its data directory. It is idempotent; every call
// returns the first one's result, once that has finished. An error means the
// directory could not be removed.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.kill()
		if err := os.RemoveAll(s.dir); err != nil {
			s.stopErr = fmt.Errorf("etcd server: removing %s: %w", s.dir, err)
		}
	})
	return s.stopErr
}

// kill kills the process group and waits until the process is reaped.
func (s *Server) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	// The group id is the server's pid (Setpgid). Kill the one process too
	// in case the group is already gone.
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Process.Kill()
	<-s.exited
}

func defaultBaseDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", ".kubelab-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}
