package authz

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
)

func TestEscalation(t *testing.T) {
	p := BootstrapPolicy()
	p.ClusterRoles = append(p.ClusterRoles,
		clusterRole("rbac-writer", rule(l("create", "update"), l("rbac.authorization.k8s.io"), l("roles", "rolebindings", "clusterroles", "clusterrolebindings"))),
		clusterRole("pod-reader", rule(getList, l(""), l("pods", "pods/log"))),
		clusterRole("binder", named(rule(l("bind"), l("rbac.authorization.k8s.io"), l("clusterroles")), "cluster-admin")),
		clusterRole("escalator", rule(l("escalate"), l("rbac.authorization.k8s.io"), l("roles"))),
	)
	p.ClusterRoleBindings = append(p.ClusterRoleBindings,
		clusterBinding("ann-rbac", "rbac-writer", userSubj("ann"), userSubj("bea"), userSubj("cy")),
		clusterBinding("ann-pods", "pod-reader", userSubj("ann")),
		clusterBinding("bea-binds", "binder", userSubj("bea")),
	)
	p.RoleBindings = append(p.RoleBindings,
		binding("team", "cy-escalates", "ClusterRole", "escalator", userSubj("cy")),
		binding("team", "cy-edits", "ClusterRole", EditRole, userSubj("cy")),
	)
	p.Roles = append(p.Roles, role("team", "secrets", rule(l("get"), l(""), l("secrets"))))
	esc := NewEscalation(New(p))
	ann, bea, cy := usr("ann"), usr("bea"), usr("cy")
	root := usr("root", user.SystemPrivilegedGroup)

	roleObj := func(ns string, rules ...rbacv1.PolicyRule) runtime.Object {
		if ns == "" {
			return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Rules: rules}
		}
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Rules: rules}
	}
	for _, tc := range []struct {
		name    string
		u       user.Info
		obj     runtime.Object
		wantErr string
	}{
		{"role within own rules", ann, roleObj("x", rule(l("get"), l(""), l("pods"))), ""},
		{"role with a subresource held", ann, roleObj("x", rule(l("list"), l(""), l("pods/log"))), ""},
		{"named role within own rules", ann, roleObj("x", named(rule(l("get"), l(""), l("pods")), "p1")), ""},
		{"cluster role within own rules", ann, roleObj("", rule(l("watch"), l(""), l("pods"))), ""},
		{"role beyond own verbs", ann, roleObj("x", rule(l("delete"), l(""), l("pods"))),
			"is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"},
		{"role with a star", ann, roleObj("x", rule(l("get"), l("*"), l("*"))), "not currently held"},
		{"non-resource URL not held", ann, roleObj("", urls(l("get"), "/metrics")), "{NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"},
		{"escalate verb in its namespace", cy, roleObj("team", rule(l("*"), l("*"), l("*"))), ""},
		{"escalate verb elsewhere", cy, roleObj("other", rule(l("*"), l("*"), l("*"))), "not currently held"},
		{"edit rules held in namespace", cy, roleObj("team", rule(l("get"), l(""), l("secrets"))), ""},
		{"masters may do anything", root, roleObj("", rule(l("*"), l("*"), l("*"))), ""},
		// bindings
		{"bind a role whose rules are held", ann, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "pod-reader"}}, ""},
		{"bind cluster-admin without holding it", ann, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}, "not currently held"},
		{"bind cluster-admin with the bind verb", bea, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}, ""},
		{"bind verb is per role name", bea, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node"}}, "not currently held"},
		{"bind a namespaced role whose rules are held there", cy, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "b"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets"}}, ""},
		{"bind a missing role", ann, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "b"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "nope"}}, "cannot check the referenced role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &admission.Attributes{Operation: admission.Create, Resource: rbacv1.SchemeGroupVersion.WithResource(resourceOf(tc.obj)),
				Object: tc.obj, UserInfo: tc.u}
			err := esc.Validate(context.Background(), a)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v\nwant Forbidden containing %q", err, tc.wantErr)
			}
		})
	}
}

func resourceOf(obj runtime.Object) string {
	switch obj.(type) {
	case *rbacv1.Role:
		return "roles"
	case *rbacv1.ClusterRole:
		return "clusterroles"
	case *rbacv1.RoleBinding:
		return "rolebindings"
	}
	return "clusterrolebindings"
}
