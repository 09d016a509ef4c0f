package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// serveHTTP serves h on addr until ctx is done, then shuts down gracefully.
func serveHTTP(ctx context.Context, env *environment, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "serving HTTP on %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serveUDP answers each datagram on addr with reply(msg, from) until ctx is
// done.
func serveUDP(ctx context.Context, env *environment, addr string, reply func(msg string, from net.Addr) string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "serving UDP on %s\n", pc.LocalAddr())
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		_, _ = pc.WriteTo([]byte(reply(strings.TrimSpace(string(buf[:n])), from)), from)
	}
}

// runAll runs servers until ctx is done or one fails; it returns the exit
// code.
func runAll(ctx context.Context, env *environment, servers ...func(context.Context) error) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s(ctx) }()
	}
	code := 0
	for range servers {
		if err := <-errs; err != nil {
			fmt.Fprintf(env.stderr, "workload: %v\n", err)
			code = 1
			cancel()
		}
	}
	return code
}

// hostnameHandler answers every request with the hostname.
func hostnameHandler(env *environment) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := env.hostname()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, h)
	})
}

// udpReply answers netexec's and serve-hostname's UDP protocol: "hostname",
// "echo MSG", "clientip"; anything else is echoed back.
func udpReply(env *environment) func(string, net.Addr) string {
	return func(msg string, from net.Addr) string {
		switch {
		case msg == "hostname":
			h, _ := env.hostname()
			return h
		case msg == "clientip":
			return from.String()
		case strings.HasPrefix(msg, "echo "):
			return strings.TrimPrefix(msg, "echo ")
		default:
			return msg
		}
	}
}

func runServeHostname(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "serve-hostname")
	port := fs.Int("port", 9376, "port to serve on")
	udp := fs.Bool("udp", false, "also answer UDP datagrams on the same port with the hostname")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	addr := net.JoinHostPort("", strconv.Itoa(*port))
	servers := []func(context.Context) error{
		func(ctx context.Context) error { return serveHTTP(ctx, env, addr, hostnameHandler(env)) },
	}
	if *udp {
		servers = append(servers, func(ctx context.Context) error {
			return serveUDP(ctx, env, addr, func(string, net.Addr) string { h, _ := env.hostname(); return h })
		})
	}
	return runAll(ctx, env, servers...)
}

// netexecHandler is netexec's HTTP API.
func netexecHandler(env *environment) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "netexec: /echo?msg= /hostname /clientip /exit?code=N /dial /healthz")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.Query().Get("msg"))
	})
	mux.Handle("/hostname", hostnameHandler(env))
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.RemoteAddr)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/shell", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "this workload is shell-free: no /shell", http.StatusNotImplemented)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code := 0
		if s := r.URL.Query().Get("code"); s != "" {
			c, err := strconv.Atoi(s)
			if err != nil || c < 0 || c > 255 {
				http.Error(w, fmt.Sprintf("bad exit code %q: want 0..255", s), http.StatusBadRequest)
				return
			}
			code = c
		}
		fmt.Fprintf(env.stdout, "exiting with code %d on request\n", code)
		w.WriteHeader(http.StatusNoContent)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// Let the response reach the client first.
		go func() {
			time.Sleep(100 * time.Millisecond)
			env.exit(code)
		}()
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		host, port := q.Get("host"), q.Get("port")
		request, protocol := q.Get("request"), q.Get("protocol")
		if protocol == "" {
			protocol = "http"
		}
		tries := 1
		if s := q.Get("tries"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1000 {
				http.Error(w, "bad tries: want 1..1000", http.StatusBadRequest)
				return
			}
			tries = n
		}
		if host == "" || port == "" || (protocol != "http" && protocol != "udp") {
			http.Error(w, "want host, port, request and protocol=http|udp", http.StatusBadRequest)
			return
		}
		addr := net.JoinHostPort(host, port)
		var responses, errs []string
		for range tries {
			var resp string
			var err error
			if protocol == "http" {
				resp, err = dialHTTP(r.Context(), addr, request)
			} else {
				resp, err = dialUDP(r.Context(), addr, request)
			}
			if err != nil {
				errs = append(errs, err.Error())
			} else {
				responses = append(responses, resp)
			}
		}
		writeJSON(w, map[string][]string{"responses": responses, "errors": errs})
	})
	return mux
}

// dialHTTP sends GET /request to addr and returns the body.
func dialHTTP(ctx context.Context, addr, request string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := &url.URL{Scheme: "http", Host: addr, Path: "/"}
	if p, q, ok := strings.Cut(request, "?"); ok {
		u.Path, u.RawQuery = "/"+strings.TrimPrefix(p, "/"), q
	} else {
		u.Path = "/" + strings.TrimPrefix(request, "/")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// dialUDP sends request to addr and returns the first reply.
func dialUDP(ctx context.Context, addr, request string) (string, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(request)); err != nil {
		return "", err
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func runNetexec(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "netexec")
	httpPort := fs.Int("http-port", 8080, "HTTP port")
	udpPort := fs.Int("udp-port", -1, "UDP port for the echo/hostname/clientip protocol; -1 disables it")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	servers := []func(context.Context) error{
		func(ctx context.Context) error {
			return serveHTTP(ctx, env, net.JoinHostPort("", strconv.Itoa(*httpPort)), netexecHandler(env))
		},
	}
	if *udpPort >= 0 {
		servers = append(servers, func(ctx context.Context) error {
			return serveUDP(ctx, env, net.JoinHostPort("", strconv.Itoa(*udpPort)), udpReply(env))
		})
	}
	return runAll(ctx, env, servers...)
}

// livenessHandler serves /healthz, which fails for good once /fail has been
// requested; /recover makes it healthy again.
func livenessHandler(env *environment) http.Handler {
	var failed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if failed.Load() {
			http.Error(w, "failing on request", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		failed.Store(true)
		fmt.Fprintln(env.stdout, "/healthz fails from now on")
		fmt.Fprint(w, "/healthz fails from now on")
	})
	mux.HandleFunc("/recover", func(w http.ResponseWriter, r *http.Request) {
		failed.Store(false)
		fmt.Fprint(w, "/healthz is ok again")
	})
	mux.Handle("/hostname", hostnameHandler(env))
	return mux
}

func runLiveness(ctx context.Context, env *environment, args []string) int {
	fs := newFlags(env, "liveness")
	port := fs.Int("port", 8080, "HTTP port")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	return runAll(ctx, env, func(ctx context.Context) error {
		return serveHTTP(ctx, env, net.JoinHostPort("", strconv.Itoa(*port)), livenessHandler(env))
	})
}
