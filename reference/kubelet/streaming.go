package kubelet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Streaming endpoints of the kubelet API: /exec and /attach
// (NAMESPACE/POD/CONTAINER, kubectl's query parameters command, input,
// output, error, tty) and /portForward/NAMESPACE/POD. Each asks the
// runtime for a streaming session (CRI Exec, Attach, PortForward) and
// proxies the upgraded connection (SPDY or WebSocket) to the URL it
// returns, as upstream's kubelet does.
func (k *Kubelet) registerStreaming(mux *http.ServeMux) {
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", k.serveExec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", k.serveAttach)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}", k.servePortForward)
	}
}

// streamOptions reads kubectl's stream parameters; exec needs a command.
func streamOptions(q url.Values) (stdin, stdout, stderr, tty bool) {
	b := func(key string) bool { v, _ := strconv.ParseBool(q.Get(key)); return v }
	return b("input"), b("output"), b("error"), b("tty")
}

// runningContainer finds the running container name of the pod in the
// request, or writes the error.
func (k *Kubelet) runningContainer(w http.ResponseWriter, r *http.Request) (string, bool) {
	ns, name, cname := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	pod := k.podByName(ns, name)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on this node", ns, name), http.StatusNotFound)
		return "", false
	}
	obs, err := k.observe(r.Context(), pod.UID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return "", false
	}
	c := obs.Latest(cname)
	if c == nil || c.State != StateRunning {
		http.Error(w, fmt.Sprintf("container %q of pod %s/%s is not running", cname, ns, name), http.StatusBadRequest)
		return "", false
	}
	return c.ID, true
}

func (k *Kubelet) serveExec(w http.ResponseWriter, r *http.Request) {
	id, ok := k.runningContainer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	stdin, stdout, stderr, tty := streamOptions(q)
	if len(q["command"]) == 0 {
		http.Error(w, "exec: no command", http.StatusBadRequest)
		return
	}
	resp, err := k.rt.Exec(r.Context(), &runtimeapi.ExecRequest{ContainerId: id, Cmd: q["command"], Stdin: stdin, Stdout: stdout, Stderr: stderr && !tty, Tty: tty})
	if err != nil {
		streamError(w, err)
		return
	}
	k.proxyStream(w, r, resp.GetUrl())
}

func (k *Kubelet) serveAttach(w http.ResponseWriter, r *http.Request) {
	id, ok := k.runningContainer(w, r)
	if !ok {
		return
	}
	stdin, stdout, stderr, tty := streamOptions(r.URL.Query())
	resp, err := k.rt.Attach(r.Context(), &runtimeapi.AttachRequest{ContainerId: id, Stdin: stdin, Stdout: stdout, Stderr: stderr && !tty, Tty: tty})
	if err != nil {
		streamError(w, err)
		return
	}
	k.proxyStream(w, r, resp.GetUrl())
}

func (k *Kubelet) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	pod := k.podByName(ns, name)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on this node", ns, name), http.StatusNotFound)
		return
	}
	obs, err := k.observe(r.Context(), pod.UID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	sb := obs.Sandbox()
	if sb == nil || !sb.Ready {
		http.Error(w, fmt.Sprintf("pod %s/%s has no running sandbox", ns, name), http.StatusBadRequest)
		return
	}
	resp, err := k.rt.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sb.ID})
	if err != nil {
		streamError(w, err)
		return
	}
	k.proxyStream(w, r, resp.GetUrl())
}

func streamError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch status.Code(err) {
	case codes.Unimplemented:
		code = http.StatusNotImplemented
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.FailedPrecondition, codes.InvalidArgument:
		code = http.StatusBadRequest
	}
	http.Error(w, err.Error(), code)
}

// proxyStream proxies the upgraded connection of r (SPDY or WebSocket,
// HTTP/1.1) to the runtime's streaming URL: the request is replayed to
// the runtime without the caller's credentials, then bytes are copied both
// ways until either side closes.
func (k *Kubelet) proxyStream(w http.ResponseWriter, r *http.Request, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		http.Error(w, fmt.Sprintf("runtime returned a bad streaming URL %q", raw), http.StatusInternalServerError)
		return
	}
	if u.Scheme != "" && u.Scheme != "http" {
		http.Error(w, fmt.Sprintf("streaming URL %q: only http is supported", raw), http.StatusNotImplemented)
		return
	}
	if !strings.EqualFold(r.Header.Get("Connection"), "upgrade") && r.Header.Get("Upgrade") == "" {
		http.Error(w, "streaming needs an upgrade request (SPDY or WebSocket)", http.StatusBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be upgraded (HTTP/2?)", http.StatusInternalServerError)
		return
	}
	var d net.Dialer
	backend, err := d.DialContext(r.Context(), "tcp", u.Host)
	if err != nil {
		http.Error(w, "streaming server: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer backend.Close()
	req := r.Clone(context.Background())
	req.URL = &url.URL{Path: u.Path, RawQuery: u.RawQuery}
	req.Host, req.RequestURI = u.Host, ""
	req.Header.Del("Authorization")
	if err := req.Write(backend); err != nil {
		http.Error(w, "streaming server: "+err.Error(), http.StatusBadGateway)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		k.log.Warn("streaming proxy: hijack", "err", err)
		return
	}
	defer client.Close()
	done := make(chan struct{}, 2)
	go func() {
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			_, _ = backend.Write(b)
		}
		_, _ = io.Copy(backend, client)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, backend)
		done <- struct{}{}
	}()
	<-done
}
