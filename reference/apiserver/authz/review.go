package authz

import (
	"context"
	"errors"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// ErrNoAttributes is returned by ValidateReviewSpec for a review that has
// neither or both of resourceAttributes and nonResourceAttributes.
var ErrNoAttributes = errors.New("exactly one of nonResourceAttributes or resourceAttributes must be specified")

// ValidateReviewSpec checks what kube-apiserver checks before evaluating an
// access review: exactly one of ResourceAttributes and NonResourceAttributes
// is set. The core answers a failure with 422 Invalid.
func ValidateReviewSpec(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) error {
	if (res == nil) == (nonRes == nil) {
		return ErrNoAttributes
	}
	return nil
}

// ReviewAttributes turns the attributes of an access review into
// authorization attributes for u, as the API server would see the
// corresponding request.
func ReviewAttributes(u user.Info, res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) authorizer.AttributesRecord {
	if res != nil {
		return authorizer.AttributesRecord{
			User:            u,
			Verb:            res.Verb,
			Namespace:       res.Namespace,
			APIGroup:        res.Group,
			APIVersion:      res.Version,
			Resource:        res.Resource,
			Subresource:     res.Subresource,
			Name:            res.Name,
			ResourceRequest: true,
		}
	}
	a := authorizer.AttributesRecord{User: u}
	if nonRes != nil {
		a.Verb, a.Path = nonRes.Verb, nonRes.Path
	}
	return a
}

// ReviewSelf evaluates a SelfSubjectAccessReview (what `kubectl auth can-i`
// sends) for the requesting user u. The spec must pass ValidateReviewSpec;
// otherwise the status carries the error as EvaluationError and Allowed is
// false.
func ReviewSelf(ctx context.Context, az Authorizer, u user.Info, spec authorizationv1.SelfSubjectAccessReviewSpec) authorizationv1.SubjectAccessReviewStatus {
	if err := ValidateReviewSpec(spec.ResourceAttributes, spec.NonResourceAttributes); err != nil {
		return authorizationv1.SubjectAccessReviewStatus{EvaluationError: err.Error()}
	}
	return review(ctx, az, ReviewAttributes(u, spec.ResourceAttributes, spec.NonResourceAttributes))
}

// ReviewSubject evaluates a SubjectAccessReview for the user the spec
// names (User, Groups, UID, Extra), as `kubectl auth can-i --as` and
// webhook callers use it. Whether the caller may ask is the caller's
// authorization (create subjectaccessreviews), not checked here.
func ReviewSubject(ctx context.Context, az Authorizer, spec authorizationv1.SubjectAccessReviewSpec) authorizationv1.SubjectAccessReviewStatus {
	if err := ValidateReviewSpec(spec.ResourceAttributes, spec.NonResourceAttributes); err != nil {
		return authorizationv1.SubjectAccessReviewStatus{EvaluationError: err.Error()}
	}
	extra := map[string][]string{}
	for k, v := range spec.Extra {
		extra[k] = v
	}
	u := &user.DefaultInfo{Name: spec.User, UID: spec.UID, Groups: spec.Groups, Extra: extra}
	return review(ctx, az, ReviewAttributes(u, spec.ResourceAttributes, spec.NonResourceAttributes))
}

func review(ctx context.Context, az Authorizer, attrs authorizer.AttributesRecord) authorizationv1.SubjectAccessReviewStatus {
	decision, reason, err := az.Authorize(ctx, attrs)
	st := authorizationv1.SubjectAccessReviewStatus{
		Allowed: decision == authorizer.DecisionAllow,
		Denied:  decision == authorizer.DecisionDeny,
		Reason:  reason,
	}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}

// ReviewRules evaluates a SelfSubjectRulesReview (`kubectl auth can-i
// --list`) for u in namespace with a RuleResolver such as *RBAC.
func ReviewRules(ctx context.Context, rr authorizer.RuleResolver, u user.Info, namespace string) authorizationv1.SubjectRulesReviewStatus {
	res, nonRes, incomplete, err := rr.RulesFor(ctx, u, namespace)
	st := authorizationv1.SubjectRulesReviewStatus{
		ResourceRules:    []authorizationv1.ResourceRule{},
		NonResourceRules: []authorizationv1.NonResourceRule{},
		Incomplete:       incomplete,
	}
	for _, r := range res {
		st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{
			Verbs: r.GetVerbs(), APIGroups: r.GetAPIGroups(), Resources: r.GetResources(), ResourceNames: r.GetResourceNames(),
		})
	}
	for _, r := range nonRes {
		st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{
			Verbs: r.GetVerbs(), NonResourceURLs: r.GetNonResourceURLs(),
		})
	}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}
