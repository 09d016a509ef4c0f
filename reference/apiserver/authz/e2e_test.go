package authz_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// TestSecurityChainWithClientGo serves HTTPS through authn.Middleware and
// authz.Middleware over the bootstrap policy, in front of a stub that
// answers pod lists, and drives it with client-go clients built from
// kubeconfigs the pki package writes: what the core will wire together.
func TestSecurityChainWithClientGo(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueServing([]string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	az := authz.New(authz.BootstrapPolicy())
	stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" {
			// What the core's endpoint does: decode, evaluate for the requester, answer.
			var ssar authorizationv1.SelfSubjectAccessReview
			if err := json.NewDecoder(r.Body).Decode(&ssar); err != nil {
				authn.WriteStatus(w, apierrors.NewBadRequest(err.Error()))
				return
			}
			u, _ := authn.UserFrom(r.Context())
			ssar.Status = authz.ReviewSelf(r.Context(), az, u, ssar.Spec)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(&ssar)
			return
		}
		json.NewEncoder(w).Encode(&corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}})
	})
	handler := authn.Middleware(authn.NewX509(ca.Pool()), authn.Options{}, authz.Middleware(az, stub))
	srv := httptest.NewUnstartedServer(handler)
	if srv.TLS, err = pki.ServerTLSConfig(serving, ca); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	server := "https://" + net.JoinHostPort("localhost", port)

	client := func(t *testing.T, id pki.Identity) kubernetes.Interface {
		t.Helper()
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := ca.WriteClientKubeconfig(path, server, id); err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		// client-go v0.37's typed clients send protobuf bodies unless told
		// otherwise; the stub decodes JSON only.
		cfg.ContentType = "application/json"
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	for _, tc := range []struct {
		name    string
		id      pki.Identity
		wantErr string // "" allowed, else the exact Forbidden message
	}{
		{"admin", pki.AdminIdentity(), ""},
		{"scheduler", pki.SchedulerIdentity(), ""},
		{"node", pki.NodeIdentity("n1"), ""},
		{"proxy may not list pods", pki.ProxyIdentity(),
			`pods is forbidden: User "system:kube-proxy" cannot list resource "pods" in API group "" in the namespace "default"`},
		{"unbound user", pki.Identity{User: "jane"},
			`pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client(t, tc.id).CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || err.Error() != tc.wantErr {
				t.Errorf("error %v\nwant Forbidden %q", err, tc.wantErr)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		id       pki.Identity
		attrs    authorizationv1.ResourceAttributes
		wantAllo bool
	}{
		{"scheduler can bind", pki.SchedulerIdentity(), authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "binding", Namespace: "default"}, true},
		{"scheduler cannot delete secrets", pki.SchedulerIdentity(), authorizationv1.ResourceAttributes{Verb: "delete", Resource: "secrets", Namespace: "default"}, false},
		{"jane cannot list pods", pki.Identity{User: "jane"}, authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"}, false},
	} {
		t.Run("can-i "+tc.name, func(t *testing.T) {
			ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &tc.attrs}}
			got, err := client(t, tc.id).AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), ssar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != tc.wantAllo {
				t.Errorf("allowed = %v, want %v (%s)", got.Status.Allowed, tc.wantAllo, got.Status.Reason)
			}
		})
	}

	t.Run("anonymous is unauthorized", func(t *testing.T) {
		cfg := clientcmd.NewDefaultClientConfig(*pki.Kubeconfig(server, "c", ca.CertPEM, mustClient(t, ca)), nil)
		rc, err := cfg.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		rc.CertData, rc.KeyData = nil, nil
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("error %v, want Unauthorized", err)
		}
	})
}

func mustClient(t *testing.T, ca *pki.CA) *pki.KeyPair {
	t.Helper()
	kp, err := ca.IssueClient(pki.AdminIdentity())
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// TestKubectl points the real kubectl at the security chain with the
// kubeconfigs pki.Ensure writes: the admin passes, an unbound user gets
// upstream's 403 message, and --as impersonates only when allowed.
func TestKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	dir := t.TempDir()
	az := authz.New(authz.BootstrapPolicy())
	stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	d, err := pki.Ensure(dir, pki.EnsureOptions{Server: "https://" + net.JoinHostPort("127.0.0.1", port)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = authn.Middleware(authn.NewX509(d.CA.Pool()), authn.Options{},
		authz.Impersonation(az, authz.Middleware(az, stub)))
	if srv.TLS, err = pki.ServerTLSConfig(d.Serving, d.CA); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	jane := filepath.Join(dir, "jane.kubeconfig")
	if err := d.CA.WriteClientKubeconfig(jane, "https://"+net.JoinHostPort("127.0.0.1", port), pki.Identity{User: "jane"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kubeconfig, path string
		wantOK                 bool
		wantOut                string
		as                     string
	}{
		{"admin reads metrics", d.Path(pki.AdminKubeconfigFile), "/metrics", true, "ok", ""},
		{"scheduler reads discovery", d.Path(pki.SchedulerKubeconfigFile), "/apis", true, "ok", ""},
		{"jane may not read metrics", jane, "/metrics", false, `Error from server (Forbidden): forbidden: User "jane" cannot get path "/metrics"`, ""},
		{"jane may not list nodes", jane, "/api/v1/nodes", false, `Error from server (Forbidden): nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope`, ""},
		{"admin as jane", d.Path(pki.AdminKubeconfigFile), "/metrics", false, `Error from server (Forbidden): forbidden: User "jane" cannot get path "/metrics"`, "jane"},
		{"jane may not impersonate", jane, "/metrics", false, `Error from server (Forbidden): users "kubernetes-admin" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope`, "kubernetes-admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--kubeconfig", tc.kubeconfig, "get", "--raw", tc.path}
			if tc.as != "" {
				args = append(args, "--as", tc.as)
			}
			cmd := exec.Command(kubectl, args...)
			cmd.Env = append(os.Environ(), "HOME="+dir)
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.wantOK || !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("kubectl: err %v, output %q; want ok=%v and %q", err, out, tc.wantOK, tc.wantOut)
			}
		})
	}
}
