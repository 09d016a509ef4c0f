package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/authz"
	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// The create-only virtual resources of authorization.k8s.io/v1 and
// authentication.k8s.io/v1: nothing is stored, the answer is the request
// with its status filled in.
var reviewResources = map[schema.GroupResource]string{
	{Group: authorizationv1.GroupName, Resource: "selfsubjectaccessreviews"}:  "SelfSubjectAccessReview",
	{Group: authorizationv1.GroupName, Resource: "subjectaccessreviews"}:      "SubjectAccessReview",
	{Group: authorizationv1.GroupName, Resource: "localsubjectaccessreviews"}: "LocalSubjectAccessReview",
	{Group: authorizationv1.GroupName, Resource: "selfsubjectrulesreviews"}:   "SelfSubjectRulesReview",
	{Group: authenticationv1.GroupName, Resource: "selfsubjectreviews"}:       "SelfSubjectReview",
	{Group: authenticationv1.GroupName, Resource: "tokenreviews"}:             "TokenReview",
}

// allowAll is the authorizer of an open server's reviews.
type allowAll struct{}

func (allowAll) Authorize(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	return authorizer.DecisionAllow, "", nil
}

func (allowAll) RulesFor(context.Context, user.Info, string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	return []authorizer.ResourceRuleInfo{&authorizer.DefaultResourceRuleInfo{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
		[]authorizer.NonResourceRuleInfo{&authorizer.DefaultNonResourceRuleInfo{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}, false, nil
}

// serveReview answers the review resources; it reports false for any other
// request.
func (s *Server) serveReview(w http.ResponseWriter, req *http.Request, info *request.RequestInfo) bool {
	if info.APIVersion != "v1" {
		return false
	}
	gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
	kind, ok := reviewResources[gr]
	if !ok {
		return false
	}
	if err := s.review(w, req, info, gr, kind); err != nil {
		writeError(w, err)
	}
	return true
}

func (s *Server) review(w http.ResponseWriter, req *http.Request, info *request.RequestInfo, gr schema.GroupResource, kind string) error {
	namespaced := gr.Resource == "localsubjectaccessreviews"
	if info.Verb != "create" || info.Subresource != "" || info.Name != "" || namespaced != (info.Namespace != "") {
		if info.Verb == "create" || info.Verb == "get" || info.Verb == "list" {
			return notFound()
		}
		return apierrors.NewMethodNotSupported(gr, info.Verb)
	}
	ctx := req.Context()
	u, ok := request.UserFrom(ctx)
	if !ok {
		u = &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}
	}
	var az authz.Authorizer = allowAll{}
	var rules authorizer.RuleResolver = allowAll{}
	if s.authorizer != nil {
		az, rules = s.authorizer, s.rules
	}
	validation, err := fieldValidation(req)
	if err != nil {
		return err
	}
	data, err := readBody(req)
	if err != nil {
		return err
	}
	gvk := gr.WithVersion("v1").GroupVersion().WithKind(kind)
	invalid := func(err error) error {
		return apierrors.NewInvalid(gvk.GroupKind(), "", field.ErrorList{field.Invalid(field.NewPath("spec"), nil, err.Error())})
	}
	var out runtime.Object
	switch gr.Resource {
	case "selfsubjectaccessreviews":
		r := &authorizationv1.SelfSubjectAccessReview{}
		if _, err := decodeObject(req, data, gvk, r, validation); err != nil {
			return err
		}
		if err := authz.ValidateReviewSpec(r.Spec.ResourceAttributes, r.Spec.NonResourceAttributes); err != nil {
			return invalid(err)
		}
		r.Status = authz.ReviewSelf(ctx, az, u, r.Spec)
		out = r
	case "subjectaccessreviews", "localsubjectaccessreviews":
		var r runtime.Object
		var spec *authorizationv1.SubjectAccessReviewSpec
		var status *authorizationv1.SubjectAccessReviewStatus
		if namespaced {
			l := &authorizationv1.LocalSubjectAccessReview{}
			r, spec, status = l, &l.Spec, &l.Status
		} else {
			l := &authorizationv1.SubjectAccessReview{}
			r, spec, status = l, &l.Spec, &l.Status
		}
		if _, err := decodeObject(req, data, gvk, r, validation); err != nil {
			return err
		}
		if err := authz.ValidateReviewSpec(spec.ResourceAttributes, spec.NonResourceAttributes); err != nil {
			return invalid(err)
		}
		if spec.User == "" && len(spec.Groups) == 0 {
			return apierrors.NewInvalid(gvk.GroupKind(), "", field.ErrorList{field.Required(field.NewPath("spec", "user"), "at least one of user or group must be specified")})
		}
		if namespaced {
			if spec.ResourceAttributes == nil || spec.ResourceAttributes.Namespace != info.Namespace {
				return apierrors.NewInvalid(gvk.GroupKind(), "", field.ErrorList{field.Invalid(field.NewPath("spec", "resourceAttributes", "namespace"), "", "must match metadata.namespace")})
			}
		}
		*status = authz.ReviewSubject(ctx, az, *spec)
		out = r
	case "selfsubjectrulesreviews":
		r := &authorizationv1.SelfSubjectRulesReview{}
		if _, err := decodeObject(req, data, gvk, r, validation); err != nil {
			return err
		}
		r.Status = authz.ReviewRules(ctx, rules, u, r.Spec.Namespace)
		out = r
	case "selfsubjectreviews":
		r := &authenticationv1.SelfSubjectReview{}
		if _, err := decodeObject(req, data, gvk, r, validation); err != nil {
			return err
		}
		r.Status = authn.SelfSubjectReview(u)
		out = r
	case "tokenreviews":
		r := &authenticationv1.TokenReview{}
		if _, err := decodeObject(req, data, gvk, r, validation); err != nil {
			return err
		}
		if r.Spec.Token == "" {
			return apierrors.NewInvalid(gvk.GroupKind(), "", field.ErrorList{field.Required(field.NewPath("spec", "token"), "")})
		}
		if s.authenticator == nil {
			return apierrors.NewServiceUnavailable("token authentication is not configured")
		}
		r.Status = authn.ReviewToken(ctx, s.authenticator, r.Spec)
		out = r
	}
	out.GetObjectKind().SetGroupVersionKind(gvk)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// reviewGroups are the groups of the review resources, in discovery order.
var reviewGroups = []string{authenticationv1.GroupName, authorizationv1.GroupName}

// discoveryGroups are the table's groups and the review resources' groups.
func (s *Server) discoveryGroups() []string {
	out := append([]string(nil), s.table.Groups()...)
	for _, g := range reviewGroups {
		if !contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// discoveryVersions are the versions of group served, the review
// resources' v1 included.
func (s *Server) discoveryVersions(group string) []string {
	out := s.table.Versions(group)
	if contains(reviewGroups, group) && !contains(out, "v1") {
		out = append(append([]string(nil), out...), "v1")
	}
	return out
}

// reviewAPIResources are the review resources of group/version for
// discovery, sorted by name.
func reviewAPIResources(group, version string) []metav1.APIResource {
	if version != "v1" {
		return nil
	}
	var out []metav1.APIResource
	for gr, kind := range reviewResources {
		if gr.Group == group {
			out = append(out, metav1.APIResource{Name: gr.Resource, SingularName: strings.ToLower(kind), Kind: kind,
				Namespaced: gr.Resource == "localsubjectaccessreviews", Verbs: metav1.Verbs{"create"}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// serveTokenRequest answers a POST to serviceaccounts/<name>/token (an
// authentication.k8s.io/v1 TokenRequest) with a token for the account,
// optionally bound to a pod of its namespace, as upstream. Without a
// signing key (New rather than NewSecure) the subresource is not served.
func (s *Server) serveTokenRequest(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	if s.saTokens == nil {
		return notFound()
	}
	if info.Verb != "create" {
		return methodNotAllowed(res, info.Verb)
	}
	gvk := authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")
	tr := &authenticationv1.TokenRequest{}
	if err := decodeTypedBody(req, gvk, tr); err != nil {
		return err
	}
	ttl := int64(3600)
	if tr.Spec.ExpirationSeconds != nil {
		ttl = *tr.Spec.ExpirationSeconds
	}
	if ttl < 600 || ttl > 1<<32 {
		return apierrors.NewInvalid(gvk.GroupKind(), info.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "expirationSeconds"), ttl, "may not specify a duration less than 10 minutes or longer than 2^32 seconds")})
	}
	obj, err := s.storage.Get(ctx, res, ns, info.Name)
	if err != nil {
		return err
	}
	sa := obj.(*corev1.ServiceAccount)
	var pod *corev1.Pod
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		if ref.Kind != "Pod" || (ref.APIVersion != "" && ref.APIVersion != "v1") {
			return apierrors.NewInvalid(gvk.GroupKind(), info.Name, field.ErrorList{field.NotSupported(field.NewPath("spec", "boundObjectRef", "kind"), ref.Kind, []string{"Pod"})})
		}
		p, err := s.storage.Get(ctx, s.table.Lookup("", "v1", "pods"), ns, ref.Name)
		if err != nil {
			return err
		}
		pod = p.(*corev1.Pod)
		if ref.UID != "" && ref.UID != pod.UID {
			return apierrors.NewConflict(corev1.Resource("pods"), ref.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record (%s)", ref.UID, pod.UID))
		}
	}
	token, exp, err := s.saTokens.IssueBound(sa, pod, tr.Spec.Audiences, time.Duration(ttl)*time.Second)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	tr.Name, tr.Namespace, tr.CreationTimestamp = sa.Name, sa.Namespace, metav1.Now()
	tr.Spec.ExpirationSeconds = &ttl
	if len(tr.Spec.Audiences) == 0 {
		tr.Spec.Audiences = []string{authn.DefaultServiceAccountIssuer}
	}
	tr.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(exp)}
	tr.SetGroupVersionKind(gvk)
	writeJSON(w, http.StatusCreated, tr)
	return nil
}
