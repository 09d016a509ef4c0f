package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
)

// EscalationName is the Escalation plugin's name.
const EscalationName = "RBACEscalation"

// Escalation is a validating admission plugin that keeps RBAC from being
// a way up, as kube-apiserver's RBAC storage does: a user may create or
// update
//   - a Role or ClusterRole only if it already holds every permission the
//     role grants (in the role's namespace for a Role, cluster-wide for a
//     ClusterRole), or may "escalate" roles/clusterroles there;
//   - a RoleBinding or ClusterRoleBinding only if it already holds every
//     permission of the referenced role (in the binding's namespace for a
//     RoleBinding), or may "bind" that role by name.
//
// Members of system:masters always may. A refusal is 403 Forbidden
// listing the permissions not held. Objects must be the k8s.io/api rbac/v1
// types; other resources pass.
type Escalation struct {
	rbac *RBAC
}

var _ admission.ValidatingPlugin = (*Escalation)(nil)

// NewEscalation returns the plugin, reading rules through rbac.
func NewEscalation(rbac *RBAC) *Escalation { return &Escalation{rbac: rbac} }

// Name implements admission.Plugin.
func (*Escalation) Name() string { return EscalationName }

// Validate implements admission.ValidatingPlugin.
func (e *Escalation) Validate(ctx context.Context, a *admission.Attributes) error {
	if a.Resource.Group != rbacv1.GroupName || a.Subresource != "" || (a.Operation != admission.Create && a.Operation != admission.Update) {
		return nil
	}
	u := a.UserInfo
	if u == nil {
		return admission.NewForbidden(a, fmt.Errorf("no user to check RBAC escalation for"))
	}
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return nil
	}
	switch obj := a.Object.(type) {
	case *rbacv1.Role:
		return e.checkRules(ctx, a, u, "roles", obj.Namespace, obj.Rules)
	case *rbacv1.ClusterRole:
		return e.checkRules(ctx, a, u, "clusterroles", "", obj.Rules)
	case *rbacv1.RoleBinding:
		return e.checkBinding(ctx, a, u, obj.Namespace, obj.RoleRef)
	case *rbacv1.ClusterRoleBinding:
		return e.checkBinding(ctx, a, u, "", obj.RoleRef)
	}
	return nil
}

// checkRules allows rules the user holds in namespace, or "escalate".
func (e *Escalation) checkRules(ctx context.Context, a *admission.Attributes, u user.Info, resource, namespace string, rules []rbacv1.PolicyRule) error {
	if e.allowed(ctx, u, "escalate", resource, namespace, "") {
		return nil
	}
	return e.covered(ctx, a, u, namespace, rules)
}

// checkBinding allows binding a role whose rules the user holds, or "bind".
func (e *Escalation) checkBinding(ctx context.Context, a *admission.Attributes, u user.Info, namespace string, ref rbacv1.RoleRef) error {
	resource := "clusterroles"
	if ref.Kind == "Role" {
		resource = "roles"
	}
	if e.allowed(ctx, u, "bind", resource, namespace, ref.Name) {
		return nil
	}
	rules, err := e.rbac.roleRules(ref, namespace)
	if err != nil {
		return admission.NewForbidden(a, fmt.Errorf("cannot check the referenced role: %w", err))
	}
	return e.covered(ctx, a, u, namespace, rules)
}

func (e *Escalation) allowed(ctx context.Context, u user.Info, verb, resource, namespace, name string) bool {
	d, _, _ := e.rbac.Authorize(ctx, authorizer.AttributesRecord{
		User: u, Verb: verb, APIGroup: rbacv1.GroupName, Resource: resource, Namespace: namespace, Name: name, ResourceRequest: true,
	})
	return d == authorizer.DecisionAllow
}

// covered checks that the user's rules in namespace cover every rule.
func (e *Escalation) covered(ctx context.Context, a *admission.Attributes, u user.Info, namespace string, rules []rbacv1.PolicyRule) error {
	var owner []rbacv1.PolicyRule
	e.rbac.visitRules(u, namespace, func(_ *grant, r *rbacv1.PolicyRule, err error) bool {
		if err == nil {
			owner = append(owner, *r)
		}
		return true
	})
	var missing []string
	for _, r := range rules {
		for _, atom := range breakdown(r) {
			if !slices.ContainsFunc(owner, func(o rbacv1.PolicyRule) bool { return ruleCovers(o, atom) }) {
				missing = append(missing, describeRule(atom))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return admission.NewForbidden(a, fmt.Errorf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s",
		u.GetName(), u.GetGroups(), strings.Join(missing, "\n")))
}

// breakdown splits a rule into rules of one verb and one resource (or URL)
// each, keeping resourceNames.
func breakdown(r rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, v := range r.Verbs {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				out = append(out, rbacv1.PolicyRule{Verbs: []string{v}, APIGroups: []string{g}, Resources: []string{res}, ResourceNames: r.ResourceNames})
			}
		}
		for _, u := range r.NonResourceURLs {
			out = append(out, rbacv1.PolicyRule{Verbs: []string{v}, NonResourceURLs: []string{u}})
		}
	}
	return out
}

// ruleCovers reports whether owner grants everything the atomic rule sub
// does.
func ruleCovers(owner, sub rbacv1.PolicyRule) bool {
	if !coversAll(owner.Verbs, sub.Verbs) || !coversAll(owner.APIGroups, sub.APIGroups) {
		return false
	}
	for _, r := range sub.Resources {
		if !slices.ContainsFunc(owner.Resources, func(o string) bool {
			if o == "*" || o == r {
				return true
			}
			_, subres, ok := strings.Cut(r, "/")
			return ok && o == "*/"+subres
		}) {
			return false
		}
	}
	for _, u := range sub.NonResourceURLs {
		if !slices.ContainsFunc(owner.NonResourceURLs, func(o string) bool {
			return o == "*" || o == u || (strings.HasSuffix(o, "*") && strings.HasPrefix(u, strings.TrimRight(o, "*")))
		}) {
			return false
		}
	}
	if len(owner.ResourceNames) == 0 {
		return true
	}
	return len(sub.ResourceNames) > 0 && coversAll(owner.ResourceNames, sub.ResourceNames)
}

func coversAll(owner, want []string) bool {
	if slices.Contains(owner, "*") {
		return true
	}
	for _, w := range want {
		if !slices.Contains(owner, w) {
			return false
		}
	}
	return true
}

func describeRule(r rbacv1.PolicyRule) string {
	if len(r.NonResourceURLs) > 0 {
		return fmt.Sprintf("{NonResourceURLs:%q, Verbs:%q}", r.NonResourceURLs, r.Verbs)
	}
	s := fmt.Sprintf("{APIGroups:%q, Resources:%q", r.APIGroups, r.Resources)
	if len(r.ResourceNames) > 0 {
		s += fmt.Sprintf(", ResourceNames:%q", r.ResourceNames)
	}
	return s + fmt.Sprintf(", Verbs:%q}", r.Verbs)
}
