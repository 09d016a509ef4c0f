package authz

import (
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
)

// Lister is what the RBAC authorizer reads: the four RBAC kinds, as
// informer listers or a static Policy provide them. Implementations must be
// safe for concurrent use. Returned objects are shared and must not be
// modified. A missing Role or ClusterRole is an error (ideally apierrors
// NotFound); the authorizer then ignores the binding that names it and
// mentions the error in its reason.
type Lister interface {
	GetRole(namespace, name string) (*rbacv1.Role, error)
	GetClusterRole(name string) (*rbacv1.ClusterRole, error)
	ListRoleBindings(namespace string) ([]*rbacv1.RoleBinding, error)
	ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error)
}

// Policy is a fixed set of RBAC objects. It is a Lister (for tests and
// for a server without stored RBAC objects) and the form in which
// BootstrapPolicy returns the objects the API server creates on first
// start. A Policy must not be modified while it is being read.
type Policy struct {
	ClusterRoles        []*rbacv1.ClusterRole
	ClusterRoleBindings []*rbacv1.ClusterRoleBinding
	Roles               []*rbacv1.Role
	RoleBindings        []*rbacv1.RoleBinding
}

var _ Lister = (*Policy)(nil)

// GetRole implements Lister; a missing role is apierrors NotFound.
func (p *Policy) GetRole(namespace, name string) (*rbacv1.Role, error) {
	for _, r := range p.Roles {
		if r.Namespace == namespace && r.Name == name {
			return r, nil
		}
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("role"), name)
}

// GetClusterRole implements Lister; a missing role is apierrors NotFound.
func (p *Policy) GetClusterRole(name string) (*rbacv1.ClusterRole, error) {
	for _, r := range p.ClusterRoles {
		if r.Name == name {
			return r, nil
		}
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("clusterrole"), name)
}

// ListRoleBindings implements Lister.
func (p *Policy) ListRoleBindings(namespace string) ([]*rbacv1.RoleBinding, error) {
	var out []*rbacv1.RoleBinding
	for _, b := range p.RoleBindings {
		if b.Namespace == namespace {
			out = append(out, b)
		}
	}
	return out, nil
}

// ListClusterRoleBindings implements Lister.
func (p *Policy) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	return p.ClusterRoleBindings, nil
}

// Objects returns the policy's objects in the order a server should create
// them: ClusterRoles, ClusterRoleBindings, Roles, RoleBindings (roles
// before the bindings that name them). Each object has its TypeMeta set
// (rbac.authorization.k8s.io/v1 and its kind) so it can be encoded as is.
// The objects are the policy's own, not copies.
func (p *Policy) Objects() []runtime.Object {
	gv := rbacv1.SchemeGroupVersion.String()
	var out []runtime.Object
	for _, o := range p.ClusterRoles {
		o.TypeMeta = metav1.TypeMeta{APIVersion: gv, Kind: "ClusterRole"}
		out = append(out, o)
	}
	for _, o := range p.ClusterRoleBindings {
		o.TypeMeta = metav1.TypeMeta{APIVersion: gv, Kind: "ClusterRoleBinding"}
		out = append(out, o)
	}
	for _, o := range p.Roles {
		o.TypeMeta = metav1.TypeMeta{APIVersion: gv, Kind: "Role"}
		out = append(out, o)
	}
	for _, o := range p.RoleBindings {
		o.TypeMeta = metav1.TypeMeta{APIVersion: gv, Kind: "RoleBinding"}
		out = append(out, o)
	}
	return out
}

// FromListers adapts client-go's RBAC listers (from a SharedInformerFactory's
// Rbac().V1() informers) to a Lister.
func FromListers(roles rbaclisters.RoleLister, roleBindings rbaclisters.RoleBindingLister,
	clusterRoles rbaclisters.ClusterRoleLister, clusterRoleBindings rbaclisters.ClusterRoleBindingLister) Lister {
	return &informerLister{roles, roleBindings, clusterRoles, clusterRoleBindings}
}

type informerLister struct {
	roles               rbaclisters.RoleLister
	roleBindings        rbaclisters.RoleBindingLister
	clusterRoles        rbaclisters.ClusterRoleLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister
}

// GetRole implements Lister.
func (l *informerLister) GetRole(namespace, name string) (*rbacv1.Role, error) {
	return l.roles.Roles(namespace).Get(name)
}

// GetClusterRole implements Lister.
func (l *informerLister) GetClusterRole(name string) (*rbacv1.ClusterRole, error) {
	return l.clusterRoles.Get(name)
}

// ListRoleBindings implements Lister.
func (l *informerLister) ListRoleBindings(namespace string) ([]*rbacv1.RoleBinding, error) {
	return l.roleBindings.RoleBindings(namespace).List(labels.Everything())
}

// ListClusterRoleBindings implements Lister.
func (l *informerLister) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	return l.clusterRoleBindings.List(labels.Everything())
}
