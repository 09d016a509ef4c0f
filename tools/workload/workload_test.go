package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubelab/kubelab/spec/procstat"
)

// testEnv is an environment with captured output and a recorded exit.
type testEnv struct {
	environment
	mu            sync.Mutex
	out, err      bytes.Buffer
	exited        chan int
	hostnameValue string
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newTestEnv() *testEnv {
	e := &testEnv{exited: make(chan int, 1), hostnameValue: "pod-a"}
	e.environment = environment{
		stdout:   lockedWriter{&e.mu, &e.out},
		stderr:   lockedWriter{&e.mu, &e.err},
		exit:     func(code int) { e.exited <- code },
		hostname: func() (string, error) { return e.hostnameValue, nil },
	}
	return e
}

func (e *testEnv) stdout() string { e.mu.Lock(); defer e.mu.Unlock(); return e.out.String() }
func (e *testEnv) stderr() string { e.mu.Lock(); defer e.mu.Unlock(); return e.err.String() }

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNetexec(t *testing.T) {
	env := newTestEnv()
	srv := httptest.NewServer(netexecHandler(&env.environment))
	defer srv.Close()
	for _, tc := range []struct {
		path     string
		wantCode int
		want     string
	}{
		{"/echo?msg=hello%20world", 200, "hello world"},
		{"/echo", 200, ""},
		{"/hostname", 200, "pod-a"},
		{"/healthz", 200, "ok"},
		{"/shell?cmd=ls", 501, "shell-free"},
		{"/exit?code=abc", 400, "bad exit code"},
		{"/exit?code=300", 400, "bad exit code"},
		{"/nope", 404, ""},
		{"/dial?host=x", 400, "want host"},
	} {
		code, body := get(t, srv, tc.path)
		if code != tc.wantCode || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.wantCode, tc.want)
		}
	}
	if code, body := get(t, srv, "/clientip"); code != 200 || !strings.HasPrefix(body, "127.0.0.1:") {
		t.Errorf("/clientip = %d %q", code, body)
	}
	select {
	case c := <-env.exited:
		t.Fatalf("exited with %d after a bad /exit", c)
	default:
	}
	if code, _ := get(t, srv, "/exit?code=3"); code != http.StatusNoContent {
		t.Errorf("/exit?code=3 = %d", code)
	}
	select {
	case c := <-env.exited:
		if c != 3 {
			t.Errorf("exit code %d, want 3", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("/exit did not exit")
	}
}

func TestNetexecDial(t *testing.T) {
	env := newTestEnv()
	target := httptest.NewServer(netexecHandler(&env.environment))
	defer target.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	go func() {
		buf := make([]byte, 1500)
		reply := udpReply(&env.environment)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(reply(string(buf[:n]), from)), from)
		}
	}()
	srv := httptest.NewServer(netexecHandler(&env.environment))
	defer srv.Close()
	u, _ := url.Parse(target.URL)
	_, uport, _ := net.SplitHostPort(pc.LocalAddr().String())
	for _, tc := range []struct{ query, want string }{
		{"host=127.0.0.1&port=" + u.Port() + "&request=hostname&protocol=http&tries=2", `{"errors":null,"responses":["pod-a","pod-a"]}`},
		{"host=127.0.0.1&port=" + u.Port() + "&request=echo?msg=hi", `{"errors":null,"responses":["hi"]}`},
		{"host=127.0.0.1&port=" + uport + "&request=hostname&protocol=udp", `{"errors":null,"responses":["pod-a"]}`},
		{"host=127.0.0.1&port=" + uport + "&request=echo%20x&protocol=udp", `{"errors":null,"responses":["x"]}`},
	} {
		code, body := get(t, srv, "/dial?"+tc.query)
		if code != 200 || strings.TrimSpace(body) != tc.want {
			t.Errorf("/dial?%s = %d %s, want %s", tc.query, code, body, tc.want)
		}
	}
	// A port nobody listens on: an error, not a response.
	code, body := get(t, srv, "/dial?host=127.0.0.1&port=1&request=hostname")
	var res struct{ Responses, Errors []string }
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || len(res.Responses) != 0 || len(res.Errors) != 1 {
		t.Errorf("/dial to a closed port = %d %s", code, body)
	}
}

func TestServeHostname(t *testing.T) {
	env := newTestEnv()
	srv := httptest.NewServer(hostnameHandler(&env.environment))
	defer srv.Close()
	for _, p := range []string{"/", "/anything"} {
		if code, body := get(t, srv, p); code != 200 || body != "pod-a" {
			t.Errorf("GET %s = %d %q", p, code, body)
		}
	}
}

func TestLiveness(t *testing.T) {
	env := newTestEnv()
	srv := httptest.NewServer(livenessHandler(&env.environment))
	defer srv.Close()
	steps := []struct {
		path     string
		wantCode int
	}{
		{"/healthz", 200}, {"/healthz", 200}, {"/fail", 200}, {"/healthz", 500}, {"/healthz", 500}, {"/recover", 200}, {"/healthz", 200},
	}
	for i, s := range steps {
		if code, body := get(t, srv, s.path); code != s.wantCode {
			t.Errorf("step %d: GET %s = %d %q, want %d", i, s.path, code, body, s.wantCode)
		}
	}
}

func TestUDPReply(t *testing.T) {
	env := newTestEnv()
	reply := udpReply(&env.environment)
	from := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 99}
	for in, want := range map[string]string{"hostname": "pod-a", "echo hi there": "hi there", "clientip": "10.0.0.1:99", "other": "other"} {
		if got := reply(in, from); got != want {
			t.Errorf("reply(%q) = %q, want %q", in, got, want)
		}
	}
}

// run runs a subcommand with a context that is cancelled (as by SIGTERM)
// after cancelAfter, or already cancelled when cancelAfter is 0.
func run(t *testing.T, cancelAfter time.Duration, args ...string) (int, *testEnv) {
	t.Helper()
	env := newTestEnv()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if cancelAfter == 0 {
		cancel()
	} else {
		time.AfterFunc(cancelAfter, cancel)
	}
	return dispatch(ctx, &env.environment, append([]string{"workload"}, args...)), env
}

func TestCommands(t *testing.T) {
	if code, env := run(t, 0, "exit", "--code", "7"); code != 7 || !strings.Contains(env.stdout(), "code 7") {
		t.Errorf("exit --code 7 = %d, %q", code, env.stdout())
	}
	if code, _ := run(t, 0, "exit", "--code", "256"); code != 2 {
		t.Errorf("exit --code 256 = %d, want 2 (usage)", code)
	}
	code, env := run(t, 0, "logs", "--lines", "3")
	if code != 0 || env.stdout() != "stdout line 1\nstdout line 2\nstdout line 3\n" || env.stderr() != "stderr line 1\nstderr line 2\nstderr line 3\n" {
		t.Errorf("logs --lines 3 = %d, %q, %q", code, env.stdout(), env.stderr())
	}
	if code, env := run(t, 0, "pause"); code != 0 || !strings.Contains(env.stdout(), "exiting") {
		t.Errorf("pause after SIGTERM = %d, %q", code, env.stdout())
	}
	if code, env := run(t, 0, "sigterm-delay", "--seconds", "0"); code != 0 || !strings.Contains(env.stdout(), "exiting in 0s") {
		t.Errorf("sigterm-delay = %d, %q", code, env.stdout())
	}
	if code, env := run(t, 0, "alloc", "--mb", "4"); code != 0 || !strings.Contains(env.stdout(), "holding 4 MiB") {
		t.Errorf("alloc --mb 4 = %d, %q", code, env.stdout())
	}
	if code, _ := run(t, 0, "nosuch"); code != 2 {
		t.Errorf("unknown subcommand = %d, want 2", code)
	}
	if code, _ := run(t, 0, "pause", "extra"); code != 2 {
		t.Errorf("pause extra = %d, want 2", code)
	}
	if code, _ := run(t, 0, "exit", "--bogus"); code != 2 {
		t.Errorf("bad flag = %d, want 2", code)
	}
	// Invoked as "pause" (a symlink): the pause subcommand.
	env = newTestEnv()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := dispatch(ctx, &env.environment, []string{"/pause"}); code != 0 || !strings.Contains(env.stdout(), "pause") {
		t.Errorf("argv[0]=/pause: %d %q", code, env.stdout())
	}
}

func TestServersStopOnSignal(t *testing.T) {
	// netexec and liveness on ephemeral ports stop cleanly when signalled.
	for _, args := range [][]string{
		{"netexec", "--http-port", "0", "--udp-port", "0"},
		{"liveness", "--port", "0"},
		{"serve-hostname", "--port", "0", "--udp"},
	} {
		if code, env := run(t, 200*time.Millisecond, args...); code != 0 {
			t.Errorf("%v = %d, stderr %q", args, code, env.stderr())
		}
	}
}

func TestAllocate(t *testing.T) {
	mem := allocate(3)
	if len(mem) != 3 || len(mem[2]) != 1<<20 || mem[2][4096] != 1 {
		t.Errorf("allocate(3) = %d chunks", len(mem))
	}
}

func TestReapZombies(t *testing.T) {
	// A child that exits and is never waited for is a zombie until reaped.
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Skipf("cannot start /bin/true: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := procstat.Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never became a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := reapZombies(); n < 1 {
		t.Errorf("reapZombies() = %d, want at least 1", n)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		t.Errorf("zombie %d still there: %v", pid, err)
	}
}

func TestPrint(t *testing.T) {
	t.Setenv("WORKLOAD_TEST_VAR", "v=1")
	code, env := run(t, 0, "print", "a b", "--flag")
	out := env.stdout()
	for _, want := range []string{"arg[0]=a b\n", "arg[1]=--flag\n", "cwd=/", "uid=", "gid=", "hostname=pod-a\n", "env:WORKLOAD_TEST_VAR=v=1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("print output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("print = %d", code)
	}
}
