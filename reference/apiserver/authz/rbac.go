// Package authz authorizes API requests with Kubernetes RBAC: Roles,
// ClusterRoles, RoleBindings and ClusterRoleBindings of
// rbac.authorization.k8s.io/v1, read through a small Lister, with
// kube-apiserver's rule semantics. Members of system:masters are always
// allowed. It also parses a request into RequestInfo (verb, namespace,
// resource, subresource, name, API group), answers denied requests with
// kube-apiserver's 403 Status, evaluates SubjectAccessReviews (what
// `kubectl auth can-i` asks), handles impersonation (`kubectl --as`),
// prevents privilege escalation through RBAC writes (Escalation, an
// admission plugin) and holds the bootstrap policy the API server creates
// on first start. See Example for the wiring.
//
// The authorizer is a pure function of its inputs and the Lister: it keeps
// no state and starts no goroutines.
package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// RBAC is the role-based authorizer. It is safe for concurrent use when
// its Lister is.
type RBAC struct {
	lister Lister
}

// Authorizer is what Middleware and the review functions need: upstream's
// unconditional authorizer interface, which *RBAC implements. Any decision
// other than authorizer.DecisionAllow denies.
type Authorizer = authorizer.UnconditionalAuthorizer

var (
	_ Authorizer              = (*RBAC)(nil)
	_ authorizer.RuleResolver = (*RBAC)(nil)
)

// New returns an RBAC authorizer reading l.
func New(l Lister) *RBAC { return &RBAC{lister: l} }

// Authorize returns DecisionAllow when the user is in system:masters or some
// binding that applies to the user (a ClusterRoleBinding, or a RoleBinding
// in the request's namespace) grants a rule that allows the request; the
// reason then names the binding, role and subject ("RBAC: allowed by
// ClusterRoleBinding …"). Otherwise it returns DecisionNoOpinion, with an
// empty reason, or "RBAC: <errors>" when roles or bindings could not be
// read. The error result is always nil: read errors only make the
// decision a denial.
func (a *RBAC) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attrs.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "no user", nil
	}
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		return authorizer.DecisionAllow, "", nil
	}
	var (
		allowedBy string
		errs      []error
	)
	a.visitRules(u, attrs.GetNamespace(), func(g *grant, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
			return true
		}
		if RuleAllows(attrs, rule) {
			allowedBy = g.String()
			return false
		}
		return true
	})
	if allowedBy != "" {
		return authorizer.DecisionAllow, "RBAC: allowed by " + allowedBy, nil
	}
	return authorizer.DecisionNoOpinion, errorsReason(errs), nil
}

func errorsReason(errs []error) string {
	switch len(errs) {
	case 0:
		return ""
	case 1:
		return "RBAC: " + errs[0].Error()
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return "RBAC: [" + strings.Join(msgs, ", ") + "]"
}

// RulesFor lists the rules that apply to u in namespace (cluster-wide ones
// included; namespace "" gives only those), for SelfSubjectRulesReview.
// incomplete is true when some role or binding could not be read; err then
// joins those errors. A member of system:masters gets one rule allowing
// everything.
func (a *RBAC) RulesFor(ctx context.Context, u user.Info, namespace string) (resourceRules []authorizer.ResourceRuleInfo, nonResourceRules []authorizer.NonResourceRuleInfo, incomplete bool, err error) {
	if slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup) {
		resourceRules = append(resourceRules, &authorizer.DefaultResourceRuleInfo{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}})
		nonResourceRules = append(nonResourceRules, &authorizer.DefaultNonResourceRuleInfo{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}})
	}
	var errs []error
	a.visitRules(u, namespace, func(_ *grant, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
			return true
		}
		if len(rule.Resources) > 0 {
			resourceRules = append(resourceRules, &authorizer.DefaultResourceRuleInfo{
				Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources, ResourceNames: rule.ResourceNames,
			})
		}
		if len(rule.NonResourceURLs) > 0 {
			nonResourceRules = append(nonResourceRules, &authorizer.DefaultNonResourceRuleInfo{
				Verbs: rule.Verbs, NonResourceURLs: rule.NonResourceURLs,
			})
		}
		return true
	})
	return resourceRules, nonResourceRules, len(errs) > 0, errors.Join(errs...)
}

// visitRules calls visit for every rule granted to u by ClusterRoleBindings
// and, when namespace is set, by RoleBindings in namespace; or with an
// error for what could not be read; g says where the rule comes from and
// is only valid during the call. It stops
// when visit returns false.
func (a *RBAC) visitRules(u user.Info, namespace string, visit func(g *grant, rule *rbacv1.PolicyRule, err error) bool) {
	var g grant
	crbs, err := a.lister.ListClusterRoleBindings()
	if err != nil && !visit(nil, nil, err) {
		return
	}
	for _, b := range crbs {
		subj, ok := appliesTo(u, b.Subjects, "")
		if !ok {
			continue
		}
		rules, err := a.roleRules(b.RoleRef, "")
		if err != nil {
			if !visit(nil, nil, err) {
				return
			}
			continue
		}
		g = grant{kind: "ClusterRoleBinding", name: b.Name, ref: b.RoleRef, subject: subj}
		for i := range rules {
			if !visit(&g, &rules[i], nil) {
				return
			}
		}
	}
	if namespace == "" {
		return
	}
	rbs, err := a.lister.ListRoleBindings(namespace)
	if err != nil && !visit(nil, nil, err) {
		return
	}
	for _, b := range rbs {
		subj, ok := appliesTo(u, b.Subjects, namespace)
		if !ok {
			continue
		}
		rules, err := a.roleRules(b.RoleRef, namespace)
		if err != nil {
			if !visit(nil, nil, err) {
				return
			}
			continue
		}
		g = grant{kind: "RoleBinding", namespace: namespace, name: b.Name, ref: b.RoleRef, subject: subj}
		for i := range rules {
			if !visit(&g, &rules[i], nil) {
				return
			}
		}
	}
}

// roleRules returns the rules of the role ref points to. A RoleBinding
// (namespace set) may name a Role in its namespace or a ClusterRole; a
// ClusterRoleBinding only a ClusterRole.
func (a *RBAC) roleRules(ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	if ref.APIGroup != rbacv1.GroupName {
		return nil, fmt.Errorf("roleRef %s %q: unsupported apiGroup %q", ref.Kind, ref.Name, ref.APIGroup)
	}
	switch {
	case ref.Kind == "ClusterRole":
		r, err := a.lister.GetClusterRole(ref.Name)
		if err != nil {
			return nil, err
		}
		return r.Rules, nil
	case ref.Kind == "Role" && namespace != "":
		r, err := a.lister.GetRole(namespace, ref.Name)
		if err != nil {
			return nil, err
		}
		return r.Rules, nil
	}
	return nil, fmt.Errorf("roleRef %s %q: unsupported kind", ref.Kind, ref.Name)
}

// grant says which binding, role and subject a rule comes from.
type grant struct {
	kind, namespace, name string
	ref                   rbacv1.RoleRef
	subject               rbacv1.Subject // Namespace filled in for service accounts
}

// String describes the grant as kube-apiserver's RBAC reasons do.
func (g *grant) String() string {
	name := g.name
	if g.namespace != "" {
		name = g.namespace + "/" + g.name
	}
	subj := g.subject.Name
	if g.subject.Kind == rbacv1.ServiceAccountKind {
		subj = g.subject.Namespace + "/" + g.subject.Name
	}
	return fmt.Sprintf("%s %q of %s %q to %s %q", g.kind, name, g.ref.Kind, g.ref.Name, g.subject.Kind, subj)
}

// appliesTo returns the first of subjects that names u. A ServiceAccount
// subject without a namespace means bindingNamespace.
func appliesTo(u user.Info, subjects []rbacv1.Subject, bindingNamespace string) (rbacv1.Subject, bool) {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if u.GetName() == s.Name {
				return s, true
			}
		case rbacv1.GroupKind:
			if slices.Contains(u.GetGroups(), s.Name) {
				return s, true
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = bindingNamespace
			}
			if ns != "" && serviceaccount.MatchesUsername(ns, s.Name, u.GetName()) {
				s.Namespace = ns
				return s, true
			}
		}
	}
	return rbacv1.Subject{}, false
}

// RuleAllows reports whether rule allows the request attrs describes, as
// Kubernetes RBAC decides:
//   - the verb is in rule.Verbs, or Verbs holds "*";
//   - for a resource request: the API group is in rule.APIGroups (or "*");
//     the resource, as "resource" or "resource/subresource", is in
//     rule.Resources, or Resources holds "*" (every resource and
//     subresource) or "*/subresource" (that subresource of every
//     resource); and rule.ResourceNames is empty or holds the request's
//     name (a request without a name, such as list or create, never
//     matches a rule with resourceNames);
//   - for a non-resource request: the path is in rule.NonResourceURLs, or
//     an entry ending in "*" is a prefix of it ("*" alone matches all).
func RuleAllows(attrs authorizer.Attributes, rule *rbacv1.PolicyRule) bool {
	if !hasOrStar(rule.Verbs, attrs.GetVerb()) {
		return false
	}
	if !attrs.IsResourceRequest() {
		p := attrs.GetPath()
		for _, u := range rule.NonResourceURLs {
			if u == "*" || u == p || (strings.HasSuffix(u, "*") && strings.HasPrefix(p, strings.TrimRight(u, "*"))) {
				return true
			}
		}
		return false
	}
	if !hasOrStar(rule.APIGroups, attrs.GetAPIGroup()) {
		return false
	}
	resource, sub := attrs.GetResource(), attrs.GetSubresource()
	combined := resource
	if sub != "" {
		combined += "/" + sub
	}
	if !slices.ContainsFunc(rule.Resources, func(r string) bool {
		return r == "*" || r == combined || (sub != "" && r == "*/"+sub)
	}) {
		return false
	}
	return len(rule.ResourceNames) == 0 || (attrs.GetName() != "" && slices.Contains(rule.ResourceNames, attrs.GetName()))
}

func hasOrStar(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}
