package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	apiproxy "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// The API server's side of the kubelet API: pods/log, pods/exec,
// pods/attach, pods/portforward and nodes/proxy are answered by the node's
// kubelet (https://ADDRESS:PORT), as kube-apiserver does. The address is
// the Node's first InternalIP (then Hostname, InternalDNS, ExternalIP,
// ExternalDNS), the port status.daemonEndpoints.kubeletEndpoint.port
// (DefaultKubeletPort when 0). The server dials with Config.KubeletTLS.

// DefaultKubeletPort is the kubelet API's port when a Node does not say.
const DefaultKubeletPort = 10250

// kubeletLogParams are the pods/log query parameters passed to the
// kubelet's /containerLogs.
var kubeletLogParams = []string{"follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes"}

// kubeletTransport is the transport to kubelets: Config.KubeletTLS, or no
// client certificate; without RootCAs the kubelet's serving certificate is
// not verified (kube-apiserver's default when --kubelet-certificate-authority
// is unset). HTTP/1.1 only, as upgrades need it.
func (s *Server) kubeletTransport() *http.Transport {
	s.kubeletOnce.Do(func() {
		var cfg *tls.Config
		if s.cfg.KubeletTLS != nil {
			cfg = s.cfg.KubeletTLS.Clone()
		} else {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.RootCAs == nil {
			cfg.InsecureSkipVerify = true
		}
		cfg.NextProtos = []string{"http/1.1"}
		s.kubeletRT = &http.Transport{
			TLSClientConfig: cfg, Proxy: nil,
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 90 * time.Second, MaxIdleConnsPerHost: 25,
		}
	})
	return s.kubeletRT
}

// nodeKubelet is the base URL of node's kubelet API.
func nodeKubelet(node *corev1.Node) (*url.URL, error) {
	var host string
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalIP, corev1.NodeExternalDNS} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no preferred addresses found; known addresses: %v", node.Status.Addresses))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = DefaultKubeletPort
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// kubeletOf returns the kubelet base URL of the node named name.
func (s *Server) kubeletOf(ctx context.Context, name string) (*url.URL, error) {
	obj, err := s.storage.Get(ctx, s.table.Lookup("", "v1", "nodes"), "", name)
	if err != nil {
		return nil, err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("nodes %q is a %T", name, obj))
	}
	return nodeKubelet(node)
}

// podContainer chooses the container of a pods/log, exec or attach
// request, as upstream: the one named, else the only one (or the
// kubectl.kubernetes.io/default-container annotation's is not consulted:
// kubectl does that); a pod with several needs a name.
func podContainer(pod *corev1.Pod, container string) (string, error) {
	if container == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, containerNames(pod.Spec.Containers))
		if len(pod.Spec.InitContainers) > 0 {
			msg += " or one of the init containers: " + containerNames(pod.Spec.InitContainers)
		}
		if len(pod.Spec.EphemeralContainers) > 0 {
			var names []string
			for _, c := range pod.Spec.EphemeralContainers {
				names = append(names, c.Name)
			}
			msg += " or one of the ephemeral containers: [" + strings.Join(names, " ") + "]"
		}
		return "", apierrors.NewBadRequest(msg)
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == container {
				return container, nil
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == container {
			return container, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name))
}

func containerNames(cs []corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return "[" + strings.Join(names, " ") + "]"
}

// getPod reads the pod of a pods/* request.
func (s *Server) getPod(ctx context.Context, res *registry.Resource, ns, name string) (*corev1.Pod, error) {
	obj, err := s.storage.Get(ctx, res, ns, name)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("pods %q is a %T", name, obj))
	}
	return pod, nil
}

// serveLog serves pods/log: GET, streamed from the kubelet's
// /containerLogs/NS/NAME/CONTAINER, flushed as bytes arrive (follow). A
// pod not bound to a node has no log yet: an empty 200, as upstream's
// LogLocation returns no location.
func (s *Server) serveLog(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	if info.Verb != "get" {
		return methodNotAllowed(res, info.Verb)
	}
	pod, err := s.getPod(ctx, res, ns, info.Name)
	if err != nil {
		return err
	}
	q := req.URL.Query()
	container, err := podContainer(pod, q.Get("container"))
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	base, err := s.kubeletOf(ctx, pod.Spec.NodeName)
	if err != nil {
		return err
	}
	loc := *base
	loc.Path = "/containerLogs/" + ns + "/" + pod.Name + "/" + container
	out := url.Values{}
	for _, p := range kubeletLogParams {
		if v, ok := q[p]; ok {
			out[p] = v
		}
	}
	loc.RawQuery = out.Encode()
	kreq, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	resp, err := s.kubeletTransport().RoundTrip(kreq)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("error reaching the kubelet of node %s: %v", pod.Spec.NodeName, err))
	}
	defer func() { _ = resp.Body.Close() }()
	if err := kubeletResponseError(resp, res, pod.Name); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away
			}
			_ = rc.Flush()
		}
		if rerr != nil {
			return nil // the response is under way: an error can only end it
		}
	}
}

// kubeletResponseError turns a kubelet's non-2xx answer into the API
// error upstream's GenericHttpResponseChecker makes of it.
func kubeletResponseError(resp *http.Response, res *registry.Resource, name string) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 206 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	text := strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(text))
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(text)
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, "", res.GroupResource(), name, text, 0, false)
}

// serveStream serves pods/exec, pods/attach and pods/portforward: the
// upgraded (SPDY or WebSocket) connection is proxied to the kubelet's
// /exec, /attach or /portForward by apimachinery's UpgradeAwareHandler.
// A GET (WebSocket) also needs the create verb, as upstream since
// AuthorizePodWebsocketUpgradeCreatePermission.
func (s *Server) serveStream(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		return methodNotAllowed(res, info.Verb)
	}
	if err := s.authorizeCreate(ctx, info); err != nil {
		return err
	}
	pod, err := s.getPod(ctx, res, ns, info.Name)
	if err != nil {
		return err
	}
	var path string
	if info.Subresource == registry.SubPortForward {
		path = "/portForward/" + ns + "/" + pod.Name
	} else {
		container, err := podContainer(pod, req.URL.Query().Get("container"))
		if err != nil {
			return err
		}
		path = map[string]string{registry.SubExec: "/exec/", registry.SubAttach: "/attach/"}[info.Subresource] + ns + "/" + pod.Name + "/" + container
	}
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	base, err := s.kubeletOf(ctx, pod.Spec.NodeName)
	if err != nil {
		return err
	}
	loc := *base
	loc.Path = path
	loc.RawQuery = kubeletStreamQuery(info.Subresource, req.URL.Query()).Encode()
	s.proxyTo(w, req, &loc, true, info.Subresource)
	return nil
}

// kubeletStreamQuery is the kubelet's query for a pods/exec, attach or
// portforward request's: the kubelet's parameter names (input, output,
// error, tty, command; port), as upstream's streamLocation writes them.
func kubeletStreamQuery(sub string, q url.Values) url.Values {
	out := url.Values{}
	if sub == registry.SubPortForward {
		for _, p := range q["ports"] {
			out.Add("port", p)
		}
		return out
	}
	for _, p := range [][2]string{{"stdin", "input"}, {"stdout", "output"}, {"stderr", "error"}, {"tty", "tty"}} {
		if queryBool(q, p[0]) {
			out.Set(p[1], "1")
		}
	}
	for _, c := range q["command"] {
		out.Add("command", c)
	}
	return out
}

// queryBool reads a stream option (stdin, stdout, ...) of a query.
func queryBool(q url.Values, name string) bool {
	b, _ := strconv.ParseBool(q.Get(name))
	return b
}

// authorizeCreate checks, on a secure server, that a GET of pods/exec,
// attach or portforward (a WebSocket upgrade) would also be allowed as
// create, the verb of the POST kubectl sends with SPDY.
func (s *Server) authorizeCreate(ctx context.Context, info *request.RequestInfo) error {
	if s.authorizer == nil || info.Verb == "create" {
		return nil
	}
	u, ok := authn.UserFrom(ctx)
	if !ok {
		return apierrors.NewInternalError(errors.New("no user in request context"))
	}
	attrs := authz.Attributes(u, info)
	attrs.Verb = "create"
	decision, reason, err := s.authorizer.Authorize(ctx, attrs)
	if decision == authorizer.DecisionAllow {
		return nil
	}
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	return authz.Forbidden(attrs, reason)
}

// serveNodeProxy serves nodes/NAME/proxy/PATH: any method, proxied to
// https://KUBELET/PATH.
func (s *Server) serveNodeProxy(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo) error {
	base, err := s.kubeletOf(ctx, info.Name)
	if err != nil {
		return err
	}
	marker := "/nodes/" + info.Name + "/proxy"
	i := strings.Index(req.URL.Path, marker)
	if i < 0 {
		return notFound()
	}
	loc := *base
	loc.Path = req.URL.Path[i+len(marker):]
	if loc.Path == "" {
		loc.Path = "/"
	}
	loc.RawQuery = req.URL.RawQuery
	s.proxyTo(w, req, &loc, false, "")
	return nil
}

// proxyTo proxies req to loc with the kubelet transport. The client's
// credentials are not forwarded: the kubelet sees the API server's. As
// kube-apiserver does, a WebSocket exec or attach with the v5 stream-close
// protocol (kubectl's first choice) is translated to SPDY towards the
// kubelet, and a WebSocket port-forward tunnelling SPDY is unwrapped.
func (s *Server) proxyTo(w http.ResponseWriter, req *http.Request, loc *url.URL, upgradeRequired bool, sub string) {
	out := req.Clone(req.Context())
	out.Header.Del("Authorization")
	for k := range out.Header {
		if strings.HasPrefix(k, "Impersonate-") {
			out.Header.Del(k)
		}
	}
	rt := s.kubeletTransport()
	h := proxy.NewUpgradeAwareHandler(loc, rt, false, upgradeRequired, kubeletResponder{})
	h.UseLocationHost = true
	h.FlushInterval = -1
	var handler http.Handler = h
	switch sub {
	case registry.SubExec, registry.SubAttach:
		q := req.URL.Query()
		opts := apiproxy.Options{Stdin: queryBool(q, "stdin"), Stdout: queryBool(q, "stdout"), Stderr: queryBool(q, "stderr"), Tty: queryBool(q, "tty")}
		handler = apiproxy.NewTranslatingHandler(h, apiproxy.NewStreamTranslatorHandler(loc, rt, 0, opts), wsstream.IsWebSocketRequestWithStreamCloseProtocol)
	case registry.SubPortForward:
		handler = apiproxy.NewTranslatingHandler(h, apiproxy.NewTunnelingHandler(h), wsstream.IsWebSocketRequestWithTunnelingProtocol)
	}
	handler.ServeHTTP(w, out)
}

// kubeletResponder writes a proxy failure as an API status.
type kubeletResponder struct{}

// Error answers 503 when the kubelet cannot be reached, as upstream's
// proxy does for dial errors, or the error's own status.
func (kubeletResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		writeError(w, err)
		return
	}
	writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach the kubelet: %v", err)))
}
