package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
)

// RequestInfoFrom returns the RequestInfo that Middleware (or the core's
// own filter) stored in ctx: k8s.io/apiserver's context key, so upstream
// code finds it too.
func RequestInfoFrom(ctx context.Context) (*genericrequest.RequestInfo, bool) {
	return genericrequest.RequestInfoFrom(ctx)
}

// Middleware authorizes each request with az and passes it to next with its
// RequestInfo in the context (see RequestInfoFrom): the one already there
// (from k8s.io/apiserver's request.WithRequestInfo, as the core's filter
// puts it) or else ParseRequestInfo's. It must run after authn.Middleware,
// which puts the user in the context. It answers:
//   - 500 InternalError when there is no user in the context, az fails,
//     or the path names no resource (as kube-apiserver does for
//     "/api/v1/watch");
//   - 403 Forbidden (see Forbidden) when az does not allow the request.
func Middleware(az Authorizer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, ok := authn.UserFrom(req.Context())
		if !ok {
			authn.WriteStatus(w, apierrors.NewInternalError(errors.New("no user in request context")))
			return
		}
		info, ok := RequestInfoFrom(req.Context())
		if !ok {
			var err error
			if info, err = ParseRequestInfo(req); err != nil {
				authn.WriteStatus(w, apierrors.NewInternalError(fmt.Errorf("failed to create RequestInfo: %w", err)))
				return
			}
			req = req.WithContext(genericrequest.WithRequestInfo(req.Context(), info))
		}
		attrs := Attributes(u, info)
		decision, reason, err := az.Authorize(req.Context(), attrs)
		if err != nil && decision != authorizer.DecisionAllow {
			authn.WriteStatus(w, apierrors.NewInternalError(err))
			return
		}
		if decision != authorizer.DecisionAllow {
			authn.WriteStatus(w, Forbidden(attrs, reason))
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Filter returns the authorization filter for a server's handler chain:
// Impersonation(az, Middleware(az, next)). Place it after authn.Filter.
func Filter(az Authorizer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return Impersonation(az, Middleware(az, next)) }
}

// Forbidden returns kube-apiserver's 403 for a denied request, built with
// apierrors.NewForbidden, e.g.
//
//	pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "default"
//	nodes "n1" is forbidden: User "x" cannot get resource "nodes" in API group "" at the cluster scope
//	forbidden: User "x" cannot get path "/metrics"
//
// with ": <reason>" appended when reason is not empty.
func Forbidden(attrs authorizer.Attributes, reason string) *apierrors.StatusError {
	msg := ForbiddenMessage(attrs)
	if reason != "" {
		msg += ": " + reason
	}
	gr := schema.GroupResource{Group: attrs.GetAPIGroup(), Resource: attrs.GetResource()}
	return apierrors.NewForbidden(gr, attrs.GetName(), errors.New(msg))
}

// ForbiddenMessage is the part of the 403 message that says who could not
// do what: `User "x" cannot list resource "pods" in API group "" in the
// namespace "default"` (or "at the cluster scope", or `cannot get path
// "/p"` for a non-resource request). A subresource is shown as
// "pods/status".
func ForbiddenMessage(attrs authorizer.Attributes) string {
	name := ""
	if u := attrs.GetUser(); u != nil {
		name = u.GetName()
	}
	if !attrs.IsResourceRequest() {
		return fmt.Sprintf("User %q cannot %s path %q", name, attrs.GetVerb(), attrs.GetPath())
	}
	resource := attrs.GetResource()
	if sub := attrs.GetSubresource(); sub != "" {
		resource += "/" + sub
	}
	if ns := attrs.GetNamespace(); ns != "" {
		return fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", name, attrs.GetVerb(), resource, attrs.GetAPIGroup(), ns)
	}
	return fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", name, attrs.GetVerb(), resource, attrs.GetAPIGroup())
}
