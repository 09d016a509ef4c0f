package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/kubelab/kubelab/spec/nsenter"
)

// DefaultStreamAddr is where the streaming server listens when
// Config.StreamAddr is empty: the loopback, on a free port.
const DefaultStreamAddr = "127.0.0.1:0"

// streamServer is the runtime's CRI streaming server (k8s.io/cri-streaming,
// the kubelet's own): Exec, Attach and PortForward return URLs to it, and
// the client (kubelet, crictl) speaks SPDY or WebSocket to it. It is
// started on first use and stopped by Close.
type streamServer struct {
	mu     sync.Mutex // guards srv, http and closed
	srv    streaming.Server
	http   *http.Server
	closed bool
}

// streaming returns the started streaming server.
func (r *Runtime) streaming() (streaming.Server, error) {
	r.stream.mu.Lock()
	defer r.stream.mu.Unlock()
	if r.stream.closed {
		return nil, status.Error(codes.Unavailable, "the runtime is closed")
	}
	if r.stream.srv != nil {
		return r.stream.srv, nil
	}
	addr := r.streamAddr
	if addr == "" {
		addr = DefaultStreamAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errInternal("streaming server: listen on %s: %v", addr, err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = ln.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	srv, err := streaming.NewServer(cfg, streamRuntime{r})
	if err != nil {
		ln.Close()
		return nil, errInternal("streaming server: %v", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	r.stream.srv, r.stream.http = srv, hs
	return srv, nil
}

// closeStreaming stops the streaming server and its open streams.
func (r *Runtime) closeStreaming() error {
	r.stream.mu.Lock()
	defer r.stream.mu.Unlock()
	r.stream.closed = true
	if r.stream.http == nil {
		return nil
	}
	err := r.stream.http.Close()
	r.stream.srv, r.stream.http = nil, nil
	return err
}

// Exec implements CRI: it checks that the container runs and returns the
// URL of a streaming exec on the runtime's streaming server, where the
// command runs as ExecSync's do, with or without a terminal.
func (r *Runtime) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "exec: empty command")
	}
	id, err := r.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	srv, err := r.streaming()
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtimeapi.ExecRequest)
	req.ContainerId = id
	return srv.GetExec(req)
}

// Attach implements CRI: it checks that the container runs and that it
// has a stdin when one is asked for, and returns the URL of an attach on
// the runtime's streaming server, which connects to the container's shim
// (see attach.go). Containers have no terminal here, so a tty attach is
// InvalidArgument.
func (r *Runtime) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	id, err := r.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	var hasStdin bool
	if c, ok := r.containers[id]; ok {
		hasStdin = c.config.GetStdin()
	}
	r.mu.Unlock()
	if req.GetTty() {
		return nil, status.Errorf(codes.InvalidArgument, "attach to container %q: a tty is not supported (the process runtime gives containers no terminal)", id)
	}
	if req.GetStdin() && !hasStdin {
		return nil, status.Errorf(codes.InvalidArgument, "attach to container %q: stdin asked for, but the container was created without stdin", id)
	}
	if !req.GetStdin() && !req.GetStdout() && !req.GetStderr() {
		return nil, status.Error(codes.InvalidArgument, "attach: one of stdin, stdout and stderr must be set")
	}
	srv, err := r.streaming()
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtimeapi.AttachRequest)
	req.ContainerId = id
	return srv.GetAttach(req)
}

// PortForward implements CRI: it returns the URL of a port forward on the
// runtime's streaming server, which connects to the ports on the sandbox's
// loopback from inside its network namespace.
func (r *Runtime) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	r.mu.Lock()
	s, err := r.lookupSandboxLocked(req.GetPodSandboxId())
	var ready bool
	var id string
	if err == nil {
		ready, id = s.Ready, s.ID
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ready {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %q is not ready", id)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, status.Errorf(codes.InvalidArgument, "port %d is not a TCP port", p)
		}
	}
	srv, err := r.streaming()
	if err != nil {
		return nil, err
	}
	req = proto.Clone(req).(*runtimeapi.PortForwardRequest)
	req.PodSandboxId = id
	return srv.GetPortForward(req)
}

// runningContainer resolves a container ID (or unique prefix) of a running
// container.
func (r *Runtime) runningContainer(id string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookupContainerLocked(id)
	if err != nil {
		return "", err
	}
	r.refreshLocked(c)
	if c.State != stateRunning {
		return "", status.Errorf(codes.FailedPrecondition, "container %q is %s, not running", c.ID, c.State)
	}
	return c.ID, nil
}

// streamRuntime is the streaming.Runtime the streaming server calls once a
// client connected.
type streamRuntime struct{ r *Runtime }

var _ streaming.Runtime = streamRuntime{}

// Exec runs cmd in the container, its stdio connected to the streams (or to
// a new terminal when tty is set, resized as resize says). A non-zero exit
// is a utilexec.CodeExitError, which the server reports as the exit code.
func (s streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	var (
		ptmx, ptty *os.File
		inR, inW   *os.File
		err        error
	)
	if tty {
		if ptmx, ptty, err = pty.Open(); err != nil {
			return fmt.Errorf("open a terminal: %w", err)
		}
		defer ptmx.Close()
		defer ptty.Close()
	} else if in != nil {
		// A pipe of our own: exec.Cmd would wait for the copy from a
		// stream that may never end.
		if inR, inW, err = os.Pipe(); err != nil {
			return err
		}
		defer inR.Close()
	}
	p, id, err := s.r.startInContainer(containerID, cmd, func(p *exec.Cmd) {
		if tty {
			p.Stdin, p.Stdout, p.Stderr = ptty, ptty, ptty
			p.SysProcAttr.Setsid, p.SysProcAttr.Setctty, p.SysProcAttr.Ctty = true, true, 0
			p.Env = append(append([]string{}, p.Env...), "TERM=xterm")
			return
		}
		p.SysProcAttr.Setpgid = true
		if inR != nil {
			p.Stdin = inR
		}
		if out != nil {
			p.Stdout = out
		}
		if errw != nil {
			p.Stderr = errw
		}
		p.WaitDelay = time.Second
	})
	if err != nil {
		if inW != nil {
			inW.Close()
		}
		return err
	}
	var copies sync.WaitGroup
	if tty {
		ptty.Close() // the command holds it
		if in != nil {
			go func() { _, _ = io.Copy(ptmx, in) }()
		}
		if out != nil {
			copies.Add(1)
			go func() { defer copies.Done(); _, _ = io.Copy(out, ptmx) }() // EIO once the terminal's last holder closed it
		}
		// The resize loop uses ptmx's descriptor number, so it must end
		// before ptmx is closed (deferred above, so run after this): a
		// descriptor reused by then would be resized in its place.
		stopResize, resizeDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(resizeDone)
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					_ = pty.Setsize(ptmx, &pty.Winsize{Rows: sz.Height, Cols: sz.Width})
				case <-stopResize:
					return
				}
			}
		}()
		defer func() { close(stopResize); <-resizeDone }()
	} else if inW != nil {
		inR.Close()
		go func() {
			_, _ = io.Copy(inW, in)
			inW.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = unix.Kill(-p.Process.Pid, unix.SIGKILL)
		<-done
		return ctx.Err()
	}
	if tty {
		// Output still in the terminal is read until EIO (the terminal's
		// last holder is gone) — or a background child keeps it open.
		waited := make(chan struct{})
		go func() { copies.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(time.Second):
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return utilexec.CodeExitError{Err: fmt.Errorf("command '%s' exited with %d", strings.Join(cmd, " "), code), Code: code}
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("exec in container %q: %w", id, err)
	}
	return nil
}

// Attach connects the streams to the container's shim until the
// container's output ends (see attach.go).
func (s streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if tty {
		return errors.New("attach with a tty is not supported by the process runtime")
	}
	var o, e io.Writer
	if out != nil {
		o = out
	}
	if errw != nil {
		e = errw
	}
	return attachClient(s.r.containerDir(containerID), in, o, e)
}

// PortForward connects stream to port on the sandbox's loopback, dialled
// from inside the sandbox's network namespace (the host's for a sandbox
// with the host's network), and copies both ways until either side ends.
func (s streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	s.r.mu.Lock()
	sb, err := s.r.lookupSandboxLocked(podSandboxID)
	netns := ""
	if err == nil {
		netns = sb.NetNS
	}
	s.r.mu.Unlock()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	var conn net.Conn
	dial := func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	}
	if netns == "" {
		err = dial()
	} else {
		// A socket stays in the namespace it was created in.
		err = nsenter.Do(netns, dial)
	}
	if err != nil {
		return fmt.Errorf("pod sandbox %q: connect to port %d: %w", podSandboxID, port, err)
	}
	defer conn.Close()
	up, down := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the client is done sending
		}
		up <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		down <- err
	}()
	select {
	case err = <-down:
		// The server closed (or the stream broke): done.
	case err = <-up:
		if err == nil {
			// The client is done sending; the answer may still come.
			select {
			case err = <-down:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("port forward to %d: %w", port, err)
	}
	return nil
}
