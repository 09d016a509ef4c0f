package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"
)

// fixedSize is a remotecommand.TerminalSizeQueue with one size.
type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		select {} // no more resizes; the stream ends the goroutine's use of it
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 100, Height: 40}
}

// streamExec runs a streaming exec through the URL Exec returned, as
// kubectl and crictl do.
func streamExec(t *testing.T, r *Runtime, req *runtimeapi.ExecRequest, stdin io.Reader, size remotecommand.TerminalSizeQueue) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := r.Exec(ctx, req)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	u, err := url.Parse(resp.GetUrl())
	if err != nil {
		t.Fatalf("Exec URL %q: %v", resp.GetUrl(), err)
	}
	ex, err := remotecommand.NewSPDYExecutor(&restclient.Config{}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdin: stdin, Stdout: &stdout, Tty: req.Tty, TerminalSizeQueue: size}
	if !req.Tty {
		opts.Stderr = &stderr
	}
	err = ex.StreamWithContext(ctx, opts)
	return stdout.String(), stderr.String(), err
}

func TestStreamingExec(t *testing.T) {
	r := newTestRuntime(t)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	sb, cfg := runSandbox(t, r, "stream")
	id := startContainer(t, r, sb, cfg, containerConfig("main", "sleep", "3600"))

	// Without a terminal: stdin, stdout, stderr and the exit code.
	out, errOut, err := streamExec(t, r, &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: []string{"sh", "-c", `read x; echo "got $x in $(hostname)"; echo oops >&2; exit 3`},
		Stdin: true, Stdout: true, Stderr: true,
	}, strings.NewReader("hello\n"), nil)
	var ce utilexec.ExitError // client-go's CodeExitError is one
	if !errors.As(err, &ce) || ce.ExitStatus() != 3 {
		t.Errorf("exec exit: %v, want exit code 3", err)
	}
	if out != "got hello in stream-host\n" || errOut != "oops\n" {
		t.Errorf("exec stdout %q, stderr %q", out, errOut)
	}
	// With a terminal of the requested size. The size arrives after the
	// command started, and the SIGWINCH it sends may interrupt a stty
	// (busybox sh then reports a stale errno): poll.
	out, _, err = streamExec(t, r, &runtimeapi.ExecRequest{
		ContainerId: id, Tty: true, Stdout: true, Stdin: true,
		Cmd: []string{"sh", "-c", `test -t 0 && echo is-a-tty; for i in $(seq 100); do s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] && break; sleep 0.05; done; echo "size $s"`},
	}, strings.NewReader(""), &fixedSize{})
	if err != nil {
		t.Errorf("tty exec: %v", err)
	}
	if !strings.Contains(out, "is-a-tty") || !strings.Contains(out, "size 40 100") {
		t.Errorf("tty exec output %q, want a terminal of 40x100", out)
	}
	// Errors come from Exec itself.
	_, err = r.Exec(context.Background(), &runtimeapi.ExecRequest{ContainerId: "nope", Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "exec in an unknown container", err, codes.NotFound)
	_, err = r.Attach(context.Background(), &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true})
	wantCode(t, "attach with stdin to a container without stdin", err, codes.InvalidArgument)
	_, err = r.Attach(context.Background(), &runtimeapi.AttachRequest{ContainerId: id, Tty: true, Stdout: true})
	wantCode(t, "attach with a tty", err, codes.InvalidArgument)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAttach: a client attached to a shell started with stdin (StdinOnce)
// drives it through its stdin and gets its stdout (a line without its
// newline included) and stderr apart; when
// the client's stdin ends, the container's does, the shell exits and the
// attach ends. The output went to the log file too.
func TestAttach(t *testing.T) {
	r := newTestRuntime(t)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	sb, sbCfg := runSandbox(t, r, "attach")
	cfg := containerConfig("sh", "sh")
	cfg.Stdin, cfg.StdinOnce = true, true
	id := startContainer(t, r, sb, sbCfg, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := r.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	u, _ := url.Parse(resp.GetUrl())
	ex, err := remotecommand.NewSPDYExecutor(&restclient.Config{}, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: inR, Stdout: &stdout, Stderr: &stderr})
	}()
	if _, err := io.WriteString(inW, "echo -n hello-attach; echo oops-attach >&2\n"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && (stdout.String() == "" || stderr.String() == ""); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	// Output without a newline reaches the client too (critest's check).
	if stdout.String() != "hello-attach" || stderr.String() != "oops-attach\n" {
		t.Errorf("attached stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("attach stream: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the attach did not end with the container's stdin")
	}
	if st := waitExit(t, r, id); st.ExitCode != 0 {
		t.Errorf("shell exit code %d", st.ExitCode)
	}
	if log := readLog(t, sbCfg, cfg); !strings.Contains(log, "hello-attach") || !strings.Contains(log, "oops-attach") {
		t.Errorf("log file: %q", log)
	}
	_, err = r.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true})
	wantCode(t, "attach to an exited container", err, codes.FailedPrecondition)
}

func TestPortForward(t *testing.T) {
	r := newTestRuntime(t)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	sb, cfg := runSandbox(t, r, "pf")
	id := startContainer(t, r, sb, cfg, containerConfig("web", "sh", "-c", "mkdir -p /www && echo hello-from-pf > /www/index.html && exec httpd -f -p 8080 -h /www"))
	// Until httpd listens.
	for i := 0; ; i++ {
		if _, _, err := r.ExecSync(context.Background(), id, []string{"wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"}, 5*time.Second); err == nil {
			break
		} else if i > 200 {
			t.Fatalf("httpd does not listen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := r.PortForward(context.Background(), &runtimeapi.PortForwardRequest{PodSandboxId: sb, Port: []int32{8080}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	u, _ := url.Parse(resp.GetUrl())
	transport, upgrader, err := spdy.RoundTripperFor(&restclient.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.New(dialer, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	defer func() { close(stop); <-errc }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("ForwardPorts: %v", err)
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("forwarded ports: %v, %v", ports, err)
	}
	for i := 0; i < 2; i++ { // one connection per request
		got, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", ports[0].Local))
		if err != nil {
			t.Fatalf("GET through the port forward: %v", err)
		}
		body, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(body) != "hello-from-pf\n" {
			t.Errorf("GET through the port forward: %q", body)
		}
	}
	_, err = r.PortForward(context.Background(), &runtimeapi.PortForwardRequest{PodSandboxId: "nope", Port: []int32{80}})
	wantCode(t, "port forward to an unknown sandbox", err, codes.NotFound)
}
