package apiserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// anonymousGet fetches path over TLS without credentials.
func anonymousGet(t *testing.T, s *apiservertest.Server, path string) (int, string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(s.HTTP.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestSecureAnonymous(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	code, body := anonymousGet(t, s, "/api/v1/namespaces")
	if code != http.StatusUnauthorized || !strings.Contains(body, `"reason":"Unauthorized"`) {
		t.Fatalf("anonymous list: %d %s", code, body)
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		if code, body := anonymousGet(t, s, p); code != http.StatusOK {
			t.Errorf("anonymous %s: %d %s", p, code, body)
		}
	}
}

func TestSecureForbiddenMessage(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	alice := s.ClientFor(t, pki.Identity{User: "alice"})
	_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	want := `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("alice lists pods: %v, want 403 %q", err, want)
	}
	// A binding lets her in (once the watch cache has it).
	_, err = s.Client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: authz.ViewRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err
	})
	if _, err := alice.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("view may not list secrets: %v", err)
	}
	// view may not grant itself more: escalation check.
	_, err = alice.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: authz.ClusterAdminRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("alice binds cluster-admin: %v", err)
	}
}

// eventually retries fn until it succeeds (RBAC reads the watch cache).
func eventually(t *testing.T, fn func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		last = fn()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("never succeeded: %v", last)
	}
}

func TestSecureSchedulerIdentity(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sched := s.ClientFor(t, pki.SchedulerIdentity())
	err := sched.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("scheduler binds: %v", err)
	}
	err = sched.CoreV1().Secrets("default").Delete(ctx, "s", metav1.DeleteOptions{})
	want := `secrets "s" is forbidden: User "system:kube-scheduler" cannot delete resource "secrets" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("scheduler deletes a secret: %v, want %q", err, want)
	}
}

func TestSecureNodeRestriction(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	for _, n := range []string{"n1", "n2"} {
		if _, err := s.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubelet := s.ClientFor(t, pki.NodeIdentity("n1"))
	update := func(name string) error {
		n, err := kubelet.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Labels = map[string]string{"kubelab.io/touched": "yes"}
		_, err = kubelet.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	}
	if err := update("n1"); err != nil {
		t.Fatalf("n1 updates its own Node: %v", err)
	}
	if err := update("n2"); !apierrors.IsForbidden(err) {
		t.Fatalf("n1 updates n2: %v, want 403", err)
	}
}

func TestSecureAdmission(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}, PriorityClassName: "system-cluster-critical"}}
	_, err := s.Client.CoreV1().Pods("missing").Create(ctx, pod, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `namespaces "missing" not found`) {
		t.Fatalf("create in a missing namespace: %v", err)
	}
	got, err := s.Client.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Priority == nil || *got.Spec.Priority != 2_000_000_000 || got.Spec.ServiceAccountName != "default" {
		t.Fatalf("priority %v, service account %q", got.Spec.Priority, got.Spec.ServiceAccountName)
	}
	// The bootstrap objects exist.
	if _, err := s.Client.SchedulingV1().PriorityClasses().Get(ctx, "system-node-critical", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.RbacV1().ClusterRoles().Get(ctx, authz.SchedulerRole, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSecureReviews(t *testing.T) {
	s := apiservertest.StartSecure(t, func(_ *apiserver.Config, sec *apiserver.Security) {
		sec.Tokens = authn.NewTokens(map[string]*user.DefaultInfo{"tok": {Name: "bob", Groups: []string{"dev"}}})
	})
	ctx := context.Background()
	can := func(cs kubernetes.Interface, verb, resource string) bool {
		t.Helper()
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: verb, Resource: resource}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	if !can(s.Client, "create", "pods") {
		t.Error("admin may not create pods")
	}
	sched := s.ClientFor(t, pki.SchedulerIdentity())
	if can(sched, "delete", "secrets") || !can(sched, "create", "pods/binding") {
		t.Error("scheduler review")
	}
	_, err := s.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("empty review: %v, want 422", err)
	}
	sar, err := s.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "system:kube-scheduler", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "secrets", Namespace: "default"}}}, metav1.CreateOptions{})
	if err != nil || sar.Status.Allowed {
		t.Fatalf("SAR: %+v %v", sar, err)
	}
	alice := s.ClientFor(t, pki.Identity{User: "alice"})
	if _, err := alice.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("alice creates a SAR: %v", err)
	}
	rules, err := sched.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil || len(rules.Status.ResourceRules) == 0 {
		t.Fatalf("rules review: %+v %v", rules, err)
	}
	who, err := sched.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "system:kube-scheduler" {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	tr, err := s.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "tok"}}, metav1.CreateOptions{})
	if err != nil || !tr.Status.Authenticated || tr.Status.User.Username != "bob" {
		b, _ := json.Marshal(tr)
		t.Fatalf("token review: %s %v", b, err)
	}
	// Static tokens authenticate requests too.
	cfg := *s.Config
	cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = nil, nil
	cfg.BearerToken = "tok"
	bob := kubernetes.NewForConfigOrDie(&cfg)
	who, err = bob.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "bob" {
		t.Fatalf("bob whoami: %+v %v", who, err)
	}
}

func TestSecureServiceAccountToken(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := apiservertest.StartSecure(t, func(_ *apiserver.Config, sec *apiserver.Security) { sec.SigningKey = key })
	ctx := context.Background()
	sa, err := s.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := (&authn.ServiceAccountTokens{Key: key}).Issue(sa, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// TokenRequest issues the same kind of token; a pod-bound one dies
	// with its pod.
	pod, err := s.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", UID: pod.UID}}}, metav1.CreateOptions{})
	if err != nil || tr.Status.Token == "" {
		t.Fatalf("TokenRequest: %+v %v", tr, err)
	}
	review := func(token string) authenticationv1.TokenReviewStatus {
		t.Helper()
		r, err := s.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if st := review(tr.Status.Token); !st.Authenticated || st.User.Username != "system:serviceaccount:default:robot" {
		t.Fatalf("bound token review: %+v", st)
	}
	if err := s.Client.CoreV1().Pods("default").Delete(ctx, "p", *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	if st := review(tr.Status.Token); st.Authenticated {
		t.Fatalf("token of a deleted pod: %+v", st)
	}
	short := int64(60)
	if _, err := s.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &short}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("60s token: %v, want 422", err)
	}
	cfg := *s.Config
	cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = nil, nil
	cfg.BearerToken = tok
	robot := kubernetes.NewForConfigOrDie(&cfg)
	who, err := robot.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "system:serviceaccount:default:robot" {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	if err := s.Client.CoreV1().ServiceAccounts("default").Delete(ctx, "robot", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = robot.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("token of a deleted account: %v, want 401", err)
	}
}

func TestReviewDiscovery(t *testing.T) {
	s := apiservertest.Start(t, nil)
	for _, gv := range []string{"authorization.k8s.io/v1", "authentication.k8s.io/v1"} {
		list, err := s.Client.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.APIResources) == 0 || list.APIResources[0].Verbs[0] != "create" {
			t.Fatalf("%s: %+v", gv, list.APIResources)
		}
	}
	_, lists, err := s.Client.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lists {
		for _, r := range l.APIResources {
			found = found || (l.GroupVersion == "authorization.k8s.io/v1" && r.Name == "selfsubjectaccessreviews")
		}
	}
	if !found {
		t.Fatal("aggregated discovery lacks selfsubjectaccessreviews")
	}
}
