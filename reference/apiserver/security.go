package apiserver

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/authenticator"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// DefaultAnonymousPaths are the paths a request without credentials may
// reach (as system:anonymous) on a secure server: the probes and /version.
var DefaultAnonymousPaths = []string{"/healthz", "/livez", "/readyz", "/version"}

// Security is what NewSecure wires around the core: who may connect and
// what they may do.
type Security struct {
	// CA verifies client certificates (user = CommonName, groups =
	// Organization). Required.
	CA *pki.CA
	// SigningKey signs and verifies service-account tokens; nil disables
	// service-account tokens.
	SigningKey *ecdsa.PrivateKey
	// Tokens, when set, authenticates bearer tokens (e.g.
	// authn.NewTokenFile for --token-auth-file); tried after certificates.
	Tokens authenticator.Request
	// AnonymousPaths are open to requests without credentials; nil means
	// DefaultAnonymousPaths.
	AnonymousPaths []string
}

// NewSecure builds a Server like New, with:
//
//   - authentication: client certificates signed by sec.CA, sec.Tokens,
//     service-account tokens signed with sec.SigningKey (the account, and
//     the pod of a bound token, must still exist); anonymous requests are
//     401 except on sec.AnonymousPaths;
//   - authorization: impersonation, then RBAC over the stored Roles,
//     ClusterRoles and bindings (read from the watch cache), 403 with
//     upstream's message;
//   - admission: the cfg.Admission plugins, then admission.Builtin
//     (NamespaceLifecycle, ServiceAccount, NodeRestriction, Priority) and
//     RBAC escalation prevention, in that order, reading through this
//     server's registry;
//   - bootstrap: on Start, the bootstrap RBAC policy, the system
//     priority classes and kube-system/extension-apiserver-authentication
//     (the client CA, for delegated authentication) are created when
//     missing (bypassing admission).
//
// cfg.Authentication, cfg.Authorization and cfg.Bootstrap are replaced.
func NewSecure(cfg Config, sec Security) (*Server, error) {
	if sec.CA == nil {
		return nil, errors.New("apiserver: Security.CA is nil")
	}
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	// Authentication, RBAC and admission read through the registry that
	// exists now; requests only arrive after Start.
	objects := storageGetter{storage: s.storage, table: s.table}
	auths := []authenticator.Request{authn.NewX509(sec.CA.Pool())}
	if sec.Tokens != nil {
		auths = append(auths, sec.Tokens)
	}
	var sa *authn.ServiceAccountTokens
	if sec.SigningKey != nil {
		sa = &authn.ServiceAccountTokens{Key: sec.SigningKey, Accounts: objects, Pods: objects}
		auths = append(auths, authn.NewServiceAccountAuthenticator(sa))
	}
	authenticate := authn.Union(auths...)
	anon := sec.AnonymousPaths
	if anon == nil {
		anon = DefaultAnonymousPaths
	}
	rbac := authz.New(cacheLister{cache: s.cache, table: s.table})
	s.cfg.Authentication = authn.Filter(authenticate, authn.Options{AnonymousPaths: anon})
	s.cfg.Authorization = authz.Filter(rbac)
	var boot []runtime.Object
	boot = append(boot, authz.BootstrapPolicy().Objects()...)
	for _, pc := range admission.SystemPriorityClasses() {
		pc.TypeMeta.APIVersion, pc.TypeMeta.Kind = schedulingv1.SchemeGroupVersion.String(), "PriorityClass"
		boot = append(boot, pc)
	}
	boot = append(boot, clientCAConfigMap(sec.CA))
	s.cfg.Bootstrap = boot
	plugins := slices.Concat(cfg.Admission, admission.Builtin(objects, objects, objects), []admission.Plugin{authz.NewEscalation(rbac)})
	if err := s.complete(plugins); err != nil {
		return nil, err
	}
	s.authenticator = authenticate
	s.authorizer = rbac
	s.rules = rbac
	s.saTokens = sa
	return s, nil
}

// AuthenticationConfigMap is the ConfigMap in kube-system through which the
// API server tells components that authenticate requests by delegation
// (kube-scheduler and kube-controller-manager with
// --authentication-kubeconfig, aggregated API servers) which CA signs client
// certificates: key "client-ca-file", as upstream's kube-apiserver publishes it.
const AuthenticationConfigMap = "extension-apiserver-authentication"

// clientCAConfigMap is kube-system/extension-apiserver-authentication
// holding ca's certificate. It is created when missing, like the rest of the
// bootstrap (upstream rewrites it on every start; kubelab's CA is stable
// across restarts of a data dir).
func clientCAConfigMap(ca *pki.CA) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: AuthenticationConfigMap, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{"client-ca-file": string(ca.CertPEM)},
	}
}

// createBootstrap creates each object of cfg.Bootstrap when missing, without
// admission, and waits for the watch cache to hold them.
func (s *Server) createBootstrap(ctx context.Context) error {
	for _, obj := range s.cfg.Bootstrap {
		gvk := obj.GetObjectKind().GroupVersionKind()
		var res *registry.Resource
		for _, r := range s.table.GroupResources(gvk.Group) {
			if r.Version == gvk.Version && r.Kind == gvk.Kind && r.Stored == nil {
				res = r
				break
			}
		}
		if res == nil {
			return fmt.Errorf("apiserver: no resource for bootstrap object of kind %s", gvk)
		}
		m, err := metaAccessor(obj)
		if err != nil {
			return err
		}
		if _, err := s.storage.Create(ctx, res, m.GetNamespace(), obj.DeepCopyObject(), registry.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("apiserver: creating %s %q: %w", res.Name, m.GetName(), err)
		}
	}
	if len(s.cfg.Bootstrap) == 0 {
		return nil
	}
	// RBAC reads the watch cache: have it hold the bootstrap policy before
	// the first request (anonymous probes need system:public-info-viewer).
	return s.cache.WaitFresh(ctx, 0)
}

// storageGetter reads single objects through the server's storage (from
// the store, so a namespace created a moment ago is found) for admission
// (admission.NamespaceGetter, admission.PriorityClassLister,
// admission.RuntimeClassGetter) and
// service-account authentication (authn.ServiceAccountGetter,
// authn.PodGetter).
type storageGetter struct {
	storage *registry.Storage
	table   *registry.Table
}

func (g storageGetter) get(ctx context.Context, group, resource, ns, name string) (runtime.Object, error) {
	res := g.table.Lookup(group, "v1", resource)
	if res == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: group, Resource: resource}, name)
	}
	return g.storage.Get(ctx, res, ns, name)
}

func (g storageGetter) GetNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	obj, err := g.get(ctx, "", "namespaces", "", name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Namespace), nil
}

func (g storageGetter) GetServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	obj, err := g.get(ctx, "", "serviceaccounts", ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ServiceAccount), nil
}

func (g storageGetter) GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	obj, err := g.get(ctx, "", "pods", ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

func (g storageGetter) GetPriorityClass(ctx context.Context, name string) (*schedulingv1.PriorityClass, error) {
	obj, err := g.get(ctx, "scheduling.k8s.io", "priorityclasses", "", name)
	if err != nil {
		return nil, err
	}
	return obj.(*schedulingv1.PriorityClass), nil
}

func (g storageGetter) ListPriorityClasses(context.Context) ([]*schedulingv1.PriorityClass, error) {
	objs, _ := g.storage.Cache.List(g.table.Lookup("scheduling.k8s.io", "v1", "priorityclasses"), registry.Filter{})
	out := make([]*schedulingv1.PriorityClass, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*schedulingv1.PriorityClass))
	}
	return out, nil
}

func (g storageGetter) GetRuntimeClass(ctx context.Context, name string) (*nodev1.RuntimeClass, error) {
	obj, err := g.get(ctx, "node.k8s.io", "runtimeclasses", "", name)
	if err != nil {
		return nil, err
	}
	return obj.(*nodev1.RuntimeClass), nil
}

// cacheLister is authz.Lister over the server's watch cache.
type cacheLister struct {
	cache *registry.Cache
	table *registry.Table
}

func (l cacheLister) list(resource, ns, name string) []runtime.Object {
	f := registry.Filter{Namespace: ns}
	if name != "" {
		f.Field = fields.OneTermEqualSelector("metadata.name", name)
	}
	objs, _ := l.cache.List(l.table.Lookup(rbacv1.GroupName, "v1", resource), f)
	return objs
}

func (l cacheLister) GetRole(ns, name string) (*rbacv1.Role, error) {
	for _, o := range l.list("roles", ns, name) {
		if r := o.(*rbacv1.Role); r.Namespace == ns && r.Name == name {
			return r, nil
		}
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("roles"), name)
}

func (l cacheLister) GetClusterRole(name string) (*rbacv1.ClusterRole, error) {
	for _, o := range l.list("clusterroles", "", name) {
		if r := o.(*rbacv1.ClusterRole); r.Name == name {
			return r, nil
		}
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("clusterroles"), name)
}

func (l cacheLister) ListRoleBindings(ns string) ([]*rbacv1.RoleBinding, error) {
	objs := l.list("rolebindings", ns, "")
	out := make([]*rbacv1.RoleBinding, 0, len(objs))
	for _, o := range objs {
		if b := o.(*rbacv1.RoleBinding); b.Namespace == ns {
			out = append(out, b)
		}
	}
	return out, nil
}

func (l cacheLister) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	objs := l.list("clusterrolebindings", "", "")
	out := make([]*rbacv1.ClusterRoleBinding, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*rbacv1.ClusterRoleBinding))
	}
	return out, nil
}
