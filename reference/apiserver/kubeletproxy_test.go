package apiserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// fakeKubelet is a kubelet API over HTTPS that records what it is asked.
type fakeKubelet struct {
	srv     *httptest.Server
	mu      sync.Mutex
	paths   []string // path?query of each request
	users   []string // client certificate CN of each request
	release chan struct{}
}

func (f *fakeKubelet) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paths = append(f.paths, r.URL.RequestURI())
	cn := ""
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		cn = r.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	f.users = append(f.users, cn)
}

func (f *fakeKubelet) last() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.paths) == 0 {
		return "", ""
	}
	return f.paths[len(f.paths)-1], f.users[len(f.users)-1]
}

func newFakeKubelet(t *testing.T, ca *pki.CA) *fakeKubelet {
	f := &fakeKubelet{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		if r.PathValue("container") == "waiting" {
			http.Error(w, `container "waiting" in pod "p" is waiting to start: ContainerCreating`, http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintln(w, "line1")
		w.(http.Flusher).Flush()
		if r.URL.Query().Get("follow") == "true" {
			select {
			case <-f.release:
			case <-r.Context().Done():
				return
			}
			_, _ = fmt.Fprintln(w, "line2")
		}
	})
	echo := func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		if !strings.EqualFold(r.Header.Get("Connection"), "Upgrade") {
			http.Error(w, "upgrade required", http.StatusBadRequest)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + r.Header.Get("Upgrade") + "\r\n\r\n")
		_ = rw.Flush()
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = rw.WriteString("echo:" + line)
		_ = rw.Flush()
	}
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /exec/{ns}/{pod}/{container}", echo)
		mux.HandleFunc(m+" /attach/{ns}/{pod}/{container}", echo)
		mux.HandleFunc(m+" /portForward/{ns}/{pod}", echo)
	}
	mux.HandleFunc("GET /stats/summary", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "client credentials forwarded", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"node":{"nodeName":"n1"}}`))
	})
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.TLS = &tls.Config{ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

type proxyEnv struct {
	api     *apiservertest.Server
	kubelet *fakeKubelet
}

func startProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	var ca *pki.CA
	api := apiservertest.StartSecure(t, func(cfg *apiserver.Config, sec *apiserver.Security) {
		ca = sec.CA
		kp, err := sec.CA.IssueClient(pki.KubeletClientIdentity())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := kp.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		cfg.KubeletTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	env := &proxyEnv{api: api, kubelet: newFakeKubelet(t, ca)}
	ctx := context.Background()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(env.kubelet.srv.URL, "https://"))
	p, _ := strconv.Atoi(port)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	node, err := api.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "not-resolvable.invalid"}, {Type: corev1.NodeInternalIP, Address: host}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	if _, err := api.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, pod := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "two", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
			InitContainers: []corev1.Container{{Name: "init", Image: "i"}},
			Containers:     []corev1.Container{{Name: "a", Image: "i"}, {Name: "b", Image: "i"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "one", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
			Containers: []corev1.Container{{Name: "only", Image: "i"}, {Name: "waiting", Image: "i"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "single", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
			Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unbound", Namespace: "default"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
	} {
		if _, err := api.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func TestPodLogProxiedToKubelet(t *testing.T) {
	env := startProxyEnv(t)
	ctx := context.Background()
	pods := env.api.Client.CoreV1().Pods("default")

	// kubectl logs reads with Stream, which decodes the error Status.
	_, err := pods.GetLogs("two", &corev1.PodLogOptions{}).Stream(ctx)
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "a container name must be specified for pod two, choose one of: [a b] or one of the init containers: [init]") {
		t.Fatalf("several containers, none named: %v", err)
	}
	if _, err := pods.GetLogs("nope", &corev1.PodLogOptions{}).DoRaw(ctx); !apierrors.IsNotFound(err) {
		t.Fatalf("unknown pod: %v", err)
	}
	if _, err := pods.GetLogs("single", &corev1.PodLogOptions{Container: "zz"}).DoRaw(ctx); !apierrors.IsBadRequest(err) {
		t.Fatalf("unknown container: %v", err)
	}
	if _, err := pods.GetLogs("one", &corev1.PodLogOptions{Container: "waiting"}).Stream(ctx); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "is waiting to start") {
		t.Fatalf("kubelet's 400 is not passed on: %v", err)
	}
	out, err := pods.GetLogs("unbound", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || len(out) != 0 {
		t.Fatalf("unbound pod: %q, %v (want an empty log, as upstream)", out, err)
	}

	tail, limit := int64(5), int64(100)
	out, err = pods.GetLogs("single", &corev1.PodLogOptions{TailLines: &tail, LimitBytes: &limit, Timestamps: true, Previous: true}).DoRaw(ctx)
	if err != nil || string(out) != "line1\n" {
		t.Fatalf("log = %q, %v", out, err)
	}
	path, user := env.kubelet.last()
	u, _ := url.Parse(path)
	q := u.Query()
	if u.Path != "/containerLogs/default/single/c" || q.Get("tailLines") != "5" || q.Get("limitBytes") != "100" || q.Get("timestamps") != "true" || q.Get("previous") != "true" || q.Has("container") {
		t.Fatalf("kubelet asked %s", path)
	}
	if user != pki.KubeletClientUser {
		t.Fatalf("kubelet saw client %q, want %q", user, pki.KubeletClientUser)
	}

	// follow streams: line1 arrives before the kubelet writes line2.
	rc, err := pods.GetLogs("single", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	br := bufio.NewReader(rc)
	if l, err := br.ReadString('\n'); err != nil || l != "line1\n" {
		t.Fatalf("first followed line %q, %v", l, err)
	}
	close(env.kubelet.release)
	if l, err := br.ReadString('\n'); err != nil || l != "line2\n" {
		t.Fatalf("second followed line %q, %v", l, err)
	}
	if _, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream did not end with the kubelet's: %v", err)
	}
}

// upgrade sends an upgrade request through the API server as cfg's user
// and, on 101, one line over the upgraded connection; it returns the
// status code and the line echoed back.
func upgrade(t *testing.T, cfg *rest.Config, method, path string) (int, string) {
	t.Helper()
	tc, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.NextProtos = []string{"http/1.1"}
	u, _ := url.Parse(cfg.Host)
	conn, err := tls.Dial("tcp", u.Host, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n", method, path, u.Host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, _ = fmt.Fprintf(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, line
}

func TestExecAttachPortForwardUpgradeProxied(t *testing.T) {
	env := startProxyEnv(t)
	for _, c := range []struct{ method, path, kubelet string }{
		{"POST", "/api/v1/namespaces/default/pods/single/exec?command=sh&command=-c&stdout=true&stderr=1&tty=false", "/exec/default/single/c?command=sh&command=-c&error=1&output=1"},
		{"GET", "/api/v1/namespaces/default/pods/two/exec?container=b&command=ls&stdout=true", "/exec/default/two/b?command=ls&output=1"},
		{"POST", "/api/v1/namespaces/default/pods/single/attach?stdin=true&tty=true", "/attach/default/single/c?input=1&tty=1"},
		{"POST", "/api/v1/namespaces/default/pods/two/portforward?ports=8080&ports=9090", "/portForward/default/two?port=8080&port=9090"},
	} {
		code, line := upgrade(t, env.api.Config, c.method, c.path)
		if code != http.StatusSwitchingProtocols || line != "echo:ping\n" {
			t.Fatalf("%s %s: %d %q", c.method, c.path, code, line)
		}
		if path, user := env.kubelet.last(); path != c.kubelet || user != pki.KubeletClientUser {
			t.Fatalf("%s %s: kubelet asked %s by %q, want %s", c.method, c.path, path, user, c.kubelet)
		}
	}
	if code, body := upgrade(t, env.api.Config, "POST", "/api/v1/namespaces/default/pods/two/exec?command=ls"); code != http.StatusBadRequest || !strings.Contains(body, "a container name must be specified") {
		t.Fatalf("exec without container: %d %s", code, body)
	}
	if code, body := upgrade(t, env.api.Config, "POST", "/api/v1/namespaces/default/pods/unbound/exec?command=ls"); code != http.StatusBadRequest || !strings.Contains(body, "pod unbound does not have a host assigned") {
		t.Fatalf("exec on an unbound pod: %d %s", code, body)
	}
	if code, _ := upgrade(t, env.api.Config, "POST", "/api/v1/namespaces/default/pods/nope/exec?command=ls"); code != http.StatusNotFound {
		t.Fatalf("exec on an unknown pod: %d", code)
	}
}

func TestStreamSubresourcesAuthorized(t *testing.T) {
	env := startProxyEnv(t)
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "getexec", Namespace: "default"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/log"}, Verbs: []string{"get"}}}}
	if _, err := env.api.Client.RbacV1().Roles("default").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "getexec", Namespace: "default"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "getexec"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "viewer"}}}
	if _, err := env.api.Client.RbacV1().RoleBindings("default").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	viewer := env.api.ConfigFor(t, pki.Identity{User: "viewer"})
	cs, err := kubernetes.NewForConfig(viewer)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC is read from the watch cache: wait until the binding applies.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cs.CoreV1().Pods("default").GetLogs("single", &corev1.PodLogOptions{}).DoRaw(ctx)
		if err == nil {
			break
		}
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			t.Fatalf("get pods/log with the role: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := upgrade(t, viewer, "POST", "/api/v1/namespaces/default/pods/single/exec?command=ls"); code != http.StatusForbidden {
		t.Fatalf("POST exec without create: %d %s", code, body)
	}
	if code, body := upgrade(t, viewer, "GET", "/api/v1/namespaces/default/pods/single/exec?command=ls"); code != http.StatusForbidden || !strings.Contains(body, `cannot create resource \"pods/exec\"`) {
		t.Fatalf("GET (WebSocket) exec without create: %d %s", code, body)
	}
	if _, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/stats/summary").DoRaw(ctx); !apierrors.IsForbidden(err) {
		t.Fatalf("nodes/proxy without the right: %v", err)
	}
}

func TestNodeProxyAndDiscovery(t *testing.T) {
	env := startProxyEnv(t)
	ctx := context.Background()
	out, err := env.api.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/stats/summary").DoRaw(ctx)
	if err != nil || string(out) != `{"node":{"nodeName":"n1"}}` {
		t.Fatalf("nodes/proxy/stats/summary = %s, %v", out, err)
	}
	if path, user := env.kubelet.last(); path != "/stats/summary" || user != pki.KubeletClientUser {
		t.Fatalf("kubelet asked %s by %q", path, user)
	}
	if _, err := env.api.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/nope/proxy/stats/summary").DoRaw(ctx); !apierrors.IsNotFound(err) {
		t.Fatalf("unknown node: %v", err)
	}
	list, err := env.api.Client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	verbs := map[string]string{}
	for _, r := range list.APIResources {
		verbs[r.Name] = strings.Join(r.Verbs, ",")
	}
	for name, want := range map[string]string{
		"pods/log": "get", "pods/exec": "create,get", "pods/attach": "create,get", "pods/portforward": "create,get",
		"nodes/proxy": "create,delete,get,patch,update",
	} {
		if verbs[name] != want {
			t.Errorf("discovery: %s verbs %q, want %q", name, verbs[name], want)
		}
	}
}
