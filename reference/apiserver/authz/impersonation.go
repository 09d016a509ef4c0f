package authz

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
)

// Impersonation request headers, as kubectl --as / --as-group send them.
const (
	// ImpersonateUserHeader names the user to act as (kubectl --as).
	ImpersonateUserHeader = "Impersonate-User"
	// ImpersonateGroupHeader, repeated, names its groups (--as-group).
	ImpersonateGroupHeader = "Impersonate-Group"
	// ImpersonateUIDHeader names its UID (--as-uid).
	ImpersonateUIDHeader = "Impersonate-Uid"
	// ImpersonateExtraHeaderPrefix + key carries an extra value; the key
	// is lower-cased and path-unescaped.
	ImpersonateExtraHeaderPrefix = "Impersonate-Extra-"
)

// Impersonation lets an authorized user act as another, as kube-apiserver
// does for the Impersonate-* headers. It runs after authn.Middleware and
// before Middleware. For each requested identity part the requester needs
// verb "impersonate" on:
//   - users/<name> (core group), or serviceaccounts/<name> in the
//     account's namespace for a name "system:serviceaccount:<ns>:<name>";
//   - groups/<group> (core group) for each Impersonate-Group;
//   - uids/<uid> in authentication.k8s.io for Impersonate-Uid;
//   - userextras/<key> with name <value> in authentication.k8s.io for each
//     Impersonate-Extra-<key> value.
//
// A denial is 403 Forbidden with upstream's message (`users "bob" is
// forbidden: User "jane" cannot impersonate resource "users" in API group
// "" at the cluster scope`); groups, uid or extras without a user are 400
// BadRequest. On success next sees the impersonated user (with
// system:authenticated, and a service account's groups when it named
// none) and no Impersonate-* headers. Requests without the headers pass
// unchanged.
func Impersonation(az Authorizer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := req.Header.Get(ImpersonateUserHeader)
		groups := req.Header.Values(ImpersonateGroupHeader)
		uid := req.Header.Get(ImpersonateUIDHeader)
		extra := map[string][]string{}
		for h, vs := range req.Header {
			if k, ok := strings.CutPrefix(h, ImpersonateExtraHeaderPrefix); ok {
				key, err := url.PathUnescape(strings.ToLower(k))
				if err != nil {
					authn.WriteStatus(w, apierrors.NewBadRequest(fmt.Sprintf("malformed header %s", h)))
					return
				}
				extra[key] = append(extra[key], vs...)
			}
		}
		if name == "" && len(groups) == 0 && uid == "" && len(extra) == 0 {
			next.ServeHTTP(w, req)
			return
		}
		if name == "" {
			authn.WriteStatus(w, apierrors.NewBadRequest("requested impersonation of groups, uid or extra without impersonating a user"))
			return
		}
		requester, ok := authn.UserFrom(req.Context())
		if !ok {
			authn.WriteStatus(w, apierrors.NewInternalError(fmt.Errorf("no user in request context")))
			return
		}
		check := func(attrs authorizer.AttributesRecord) bool {
			attrs.User, attrs.Verb, attrs.ResourceRequest = requester, "impersonate", true
			d, reason, err := az.Authorize(req.Context(), attrs)
			if err != nil && d != authorizer.DecisionAllow {
				authn.WriteStatus(w, apierrors.NewInternalError(err))
				return false
			}
			if d != authorizer.DecisionAllow {
				authn.WriteStatus(w, Forbidden(attrs, reason))
				return false
			}
			return true
		}
		if ns, sa, err := serviceaccount.SplitUsername(name); err == nil {
			if !check(authorizer.AttributesRecord{Resource: "serviceaccounts", Namespace: ns, Name: sa}) {
				return
			}
			if len(groups) == 0 {
				groups = serviceaccount.MakeGroupNames(ns)
			}
		} else if !check(authorizer.AttributesRecord{Resource: "users", Name: name}) {
			return
		}
		for _, g := range req.Header.Values(ImpersonateGroupHeader) {
			if !check(authorizer.AttributesRecord{Resource: "groups", Name: g}) {
				return
			}
		}
		if uid != "" && !check(authorizer.AttributesRecord{APIGroup: "authentication.k8s.io", Resource: "uids", Name: uid}) {
			return
		}
		keys := make([]string, 0, len(extra))
		for k := range extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, v := range extra[k] {
				if !check(authorizer.AttributesRecord{APIGroup: "authentication.k8s.io", Resource: "userextras", Subresource: k, Name: v}) {
					return
				}
			}
		}
		groups = slices.Clone(groups)
		switch {
		case name == user.Anonymous:
			if !slices.Contains(groups, user.AllUnauthenticated) {
				groups = append(groups, user.AllUnauthenticated)
			}
		case !slices.Contains(groups, user.AllAuthenticated):
			groups = append(groups, user.AllAuthenticated)
		}
		if len(extra) == 0 {
			extra = nil
		}
		for h := range req.Header {
			if strings.HasPrefix(h, "Impersonate-") {
				req.Header.Del(h)
			}
		}
		u := &user.DefaultInfo{Name: name, UID: uid, Groups: groups, Extra: extra}
		next.ServeHTTP(w, req.WithContext(authn.WithUser(req.Context(), u)))
	})
}
