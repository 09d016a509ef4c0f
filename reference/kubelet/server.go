package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultKubeletPort is the kubelet API's port.
const DefaultKubeletPort = 10250

// Handler serves the kubelet API's read side without authentication
// (wrap it with Authenticated): /healthz, /pods (the pods this kubelet
// runs, as a PodList) and /containerLogs/NAMESPACE/POD/CONTAINER with
// kubectl's log options (follow, previous, tailLines, timestamps,
// sinceSeconds, sinceTime, limitBytes); and /exec, /attach and
// /portForward, proxied to the runtime's streaming server (streaming.go);
// /stats/summary (CPU and memory of the node, pods and containers, from
// the runtime's CRI stats).
func (k *Kubelet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /pods", k.servePods)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveLogs)
	mux.HandleFunc("GET /stats/summary", k.serveStatsSummary)
	k.registerStreaming(mux)
	return mux
}

func (k *Kubelet) servePods(w http.ResponseWriter, _ *http.Request) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	if k.pods != nil {
		ps, _ := k.pods.List(labels.Everything())
		for _, p := range ps {
			if mirrorOf(p) == "" {
				list.Items = append(list.Items, *p)
			}
		}
	}
	k.mu.Lock()
	for _, p := range k.static {
		list.Items = append(list.Items, *p)
	}
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// podByName finds a pod this kubelet runs: from the API, or a static pod
// (by its mirror's name).
func (k *Kubelet) podByName(namespace, name string) *corev1.Pod {
	k.mu.Lock()
	for _, p := range k.static {
		if p.Namespace == namespace && p.Name == name {
			k.mu.Unlock()
			return p
		}
	}
	k.mu.Unlock()
	if k.pods == nil {
		return nil
	}
	p, err := k.pods.Pods(namespace).Get(name)
	if err != nil || mirrorOf(p) != "" {
		return nil
	}
	return p
}

func (k *Kubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, cname := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	pod := k.podByName(ns, name)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on this node", ns, name), http.StatusNotFound)
		return
	}
	if containerSpec(pod, cname) == nil {
		http.Error(w, fmt.Sprintf("container %q is not valid for pod %q", cname, name), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	boolean := func(key string) bool { v, _ := strconv.ParseBool(q.Get(key)); return v }
	o := LogOptions{Timestamps: boolean("timestamps"), Follow: boolean("follow"), TailLines: -1}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "tailLines: want a non-negative integer", http.StatusBadRequest)
			return
		}
		o.TailLines = n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "limitBytes: want a positive integer", http.StatusBadRequest)
			return
		}
		o.LimitBytes = n
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "sinceSeconds: want a positive integer", http.StatusBadRequest)
			return
		}
		o.SinceTime = k.now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "sinceTime: want RFC 3339", http.StatusBadRequest)
			return
		}
		o.SinceTime = t
	}
	obs, err := k.observe(r.Context(), pod.UID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	c := obs.Latest(cname)
	if boolean("previous") {
		c = obs.Previous(cname)
		if c == nil {
			http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", cname, name), http.StatusBadRequest)
			return
		}
	}
	if c == nil {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start", cname, name), http.StatusBadRequest)
		return
	}
	path := ContainerLogPath(k.sandboxOpts.LogRoot, pod, cname, c.Attempt)
	w.Header().Set("Content-Type", "text/plain")
	id := c.ID
	done := func() bool {
		st, err := k.rt.ContainerStatus(r.Context(), id, false)
		return err != nil || st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	if err := ReadLog(r.Context(), path, o, flushWriter{w}, done); err != nil {
		k.log.Debug("container logs", "pod", ns+"/"+name, "container", cname, "err", err)
	}
}

// ContainerLogPath is where the runtime writes the log of a container
// instance: NAME/ATTEMPT.log in the pod's log directory (ContainerConfig's
// LogPath under SandboxConfig's LogDirectory).
func ContainerLogPath(logRoot string, pod *corev1.Pod, container string, attempt uint32) string {
	return PodLogDir(logRoot, pod) + "/" + container + "/" + strconv.Itoa(int(attempt)) + ".log"
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f flushWriter) Flush() {
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}

// Authenticated wraps h with the kubelet's authentication and
// authorization, as upstream's kubelet does with webhook mode: a client
// certificate verified by the TLS config (its CN is the user, its O the
// groups) or a bearer token checked with a TokenReview; then a
// SubjectAccessReview for verb (from the HTTP method) on resource nodes,
// name the node, subresource from the path (stats, metrics, log, spec;
// proxy for everything else). Unauthenticated requests get 401, denied
// ones 403.
func (k *Kubelet) Authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := k.authenticate(r)
		if err != nil {
			http.Error(w, "authentication failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: map[string]authorizationv1.ExtraValue{},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verbOf(r.Method), Resource: "nodes", Name: k.cfg.NodeName, Subresource: subresourceOf(r.URL.Path),
			},
		}}
		for key, v := range u.Extra {
			sar.Spec.Extra[key] = authorizationv1.ExtraValue(v)
		}
		resp, err := k.client.AuthorizationV1().SubjectAccessReviews().Create(r.Context(), sar, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "authorization failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if !resp.Status.Allowed {
			a := sar.Spec.ResourceAttributes
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=%s)", u.Username, a.Verb, a.Subresource), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (k *Kubelet) authenticate(r *http.Request) (authenticationv1.UserInfo, bool, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		return authenticationv1.UserInfo{Username: c.Subject.CommonName, Groups: c.Subject.Organization}, true, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return authenticationv1.UserInfo{}, false, nil
	}
	tr, err := k.client.AuthenticationV1().TokenReviews().Create(r.Context(),
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, false, err
	}
	return tr.Status.User, tr.Status.Authenticated, nil
}

func verbOf(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return "get"
}

func subresourceOf(path string) string {
	for _, s := range []string{"stats", "metrics", "logs", "spec"} {
		if path == "/"+s || strings.HasPrefix(path, "/"+s+"/") {
			if s == "logs" {
				return "log"
			}
			return s
		}
	}
	return "proxy"
}

// ServeAPI serves Authenticated(Handler()) over HTTPS on addr until ctx
// ends. cert is the serving certificate (nil: a self-signed one for the
// node's name and addresses, as upstream's kubelet makes when it has
// none); clientCAs, when set, verifies client certificates.
func (k *Kubelet) ServeAPI(ctx context.Context, addr string, cert *tls.Certificate, clientCAs *x509.CertPool) error {
	if cert == nil {
		c, err := selfSigned(k.cfg.NodeName, k.cfg.InternalIP)
		if err != nil {
			return err
		}
		cert = c
	}
	// HTTP/1.1 only: streaming hijacks the connection to upgrade it.
	cfg := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"http/1.1"}}
	if clientCAs != nil {
		cfg.ClientCAs, cfg.ClientAuth = clientCAs, tls.VerifyClientCertIfGiven
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: k.Authenticated(k.Handler()), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:  func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// selfSigned makes a serving certificate for the node.
func selfSigned(node, ip string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: node + "@" + strconv.FormatInt(time.Now().Unix(), 10)},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{node},
	}
	if p := net.ParseIP(ip); p != nil {
		tmpl.IPAddresses = []net.IP{p}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
