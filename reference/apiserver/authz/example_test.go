package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// Example shows how the API server core wires the security packages: the
// data dir on every start, the handler chain, the objects to create on
// first start, and admission around each write.
func Example() {
	dataDir, _ := os.MkdirTemp("", "kubelab-example")
	defer os.RemoveAll(dataDir)

	// 1. Every start: CA, serving certificate, signing key, kubeconfigs.
	d, err := pki.Ensure(dataDir, pki.EnsureOptions{Server: "https://127.0.0.1:6443"})
	if err != nil {
		panic(err)
	}
	tlsConfig, _ := pki.ServerTLSConfig(d.Serving, d.CA)

	// 2. Authentication: certificates, then the token file and
	// service-account tokens; health probes open to anonymous users.
	tokenFile := filepath.Join(dataDir, "tokens.csv")
	os.WriteFile(tokenFile, []byte("secret,bob,uid-bob,dev\n"), 0o600)
	tokens, _ := authn.NewTokenFile(tokenFile)
	sa := &authn.ServiceAccountTokens{Key: d.SigningKey}
	authenticator := authn.Union(authn.NewX509(d.CA.Pool()), tokens, authn.NewServiceAccountAuthenticator(sa))

	// 3. Authorization over the stored RBAC objects; a static Policy
	// stands in for the server's informer-backed Lister here.
	policy := authz.BootstrapPolicy() // on first start: create policy.Objects() (AlreadyExists is fine)
	az := authz.New(policy)

	// 4. The chain, outermost first: authn → impersonation → authz → core.
	core := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := authz.RequestInfoFrom(r.Context())
		u, _ := authn.UserFrom(r.Context())
		fmt.Fprintf(w, "%s may %s %s", u.GetName(), info.Verb, info.Resource)
	})
	// As filters for the core's Config.Authentication / Config.Authorization:
	authnFilter := authn.Filter(authenticator, authn.Options{AnonymousPaths: []string{"/healthz", "/livez", "/readyz", "/version"}})
	authzFilter := authz.Filter(az) // = Impersonation(az, Middleware(az, next))
	handler := authnFilter(authzFilter(core))
	_ = tlsConfig // http.Server{TLSConfig: tlsConfig, Handler: handler}

	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods", nil)
	r.Header.Set("Authorization", "Bearer secret")
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())

	// 5. Admission inside each write handler: mutate, validate the object,
	// then validate with the plugins, then store.
	namespaces := admission.NamespaceGetterFunc(func(_ context.Context, name string) (*corev1.Namespace, error) {
		if name == "default" {
			return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil
		}
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	})
	chain := admission.DefaultChain(namespaces, noClasses{}, noClasses{})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	attrs := &admission.Attributes{Operation: admission.Create, Resource: corev1.SchemeGroupVersion.WithResource("pods"),
		Namespace: "default", Object: pod, UserInfo: nil}
	if err := chain.Admit(context.Background(), attrs); err == nil {
		err = chain.Validate(context.Background(), attrs)
		fmt.Println(err, *pod.Spec.Priority, pod.Spec.ServiceAccountName)
	}
	attrs.Namespace = "gone"
	fmt.Println(chain.Validate(context.Background(), attrs))
	// Output:
	// 403 {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"pods"},"code":403}
	// <nil> 0 default
	// namespaces "gone" not found
}

type noClasses struct{}

func (noClasses) GetPriorityClass(_ context.Context, name string) (*schedulingv1.PriorityClass, error) {
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}, name)
}

func (noClasses) ListPriorityClasses(context.Context) ([]*schedulingv1.PriorityClass, error) {
	return nil, nil
}

func (noClasses) GetRuntimeClass(_ context.Context, name string) (*nodev1.RuntimeClass, error) {
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "node.k8s.io", Resource: "runtimeclasses"}, name)
}
