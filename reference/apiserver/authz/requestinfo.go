package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
)

// ErrBadRequestPath is wrapped by ParseRequestInfo for a resource path that
// names no resource, such as "/api/v1/watch".
var ErrBadRequestPath = errors.New("unable to determine kind and namespace from url")

// ParseRequestInfo derives what a request does from its method, path and
// query, with kube-apiserver's rules:
//
//   - Paths under /api/<version>/ (core group) and /apis/<group>/<version>/
//     are resource requests; everything else, including /api, /apis,
//     /api/v1 and /apis/apps/v1, is a non-resource request whose verb is the
//     lower-cased method ("get", "post", …).
//   - The verb comes from the method: POST create, GET and HEAD get, PUT
//     update, PATCH patch, DELETE delete (other methods: empty verb). A
//     path segment "watch" or "proxy" right after the version sets the verb
//     instead (the legacy /watch/ and /proxy/ forms).
//   - /namespaces/<ns>/<resource>/… sets the namespace; /namespaces/<ns>
//     itself and its "status" and "finalize" subresources are the
//     namespaces resource named <ns> (and in namespace <ns>).
//   - After that the parts are resource[/name[/subresource]] (for "proxy"
//     there is no subresource).
//   - A get without a name becomes "list", or "watch" when the query's
//     watch parameter is true; a delete without a name becomes
//     "deletecollection". A list or watch whose fieldSelector requires
//     metadata.name=<n> gets Name n, so rules with resourceNames apply
//     (unless some list option fails to decode).
//   - FieldSelector and LabelSelector are recorded for list, watch and
//     deletecollection, except with the legacy /watch/ path.
//
// It returns upstream's RequestInfo type so that the core may store it with
// k8s.io/apiserver's request.WithRequestInfo. The error wraps
// ErrBadRequestPath.
func ParseRequestInfo(req *http.Request) (*genericrequest.RequestInfo, error) {
	info := &genericrequest.RequestInfo{
		Path: req.URL.Path,
		Verb: strings.ToLower(req.Method),
	}
	parts := splitPath(req.URL.Path)
	if len(parts) < 3 || (parts[0] != "api" && parts[0] != "apis") {
		return info, nil
	}
	info.APIPrefix = parts[0]
	parts = parts[1:]
	if info.APIPrefix == "apis" {
		if len(parts) < 3 {
			return info, nil
		}
		info.APIGroup = parts[0]
		parts = parts[1:]
	}
	info.IsResourceRequest = true
	info.APIVersion = parts[0]
	parts = parts[1:]

	verbFromPath := false
	if parts[0] == "watch" || parts[0] == "proxy" {
		if len(parts) < 2 {
			return nil, fmt.Errorf("%w: %q", ErrBadRequestPath, req.URL.Path)
		}
		info.Verb = parts[0]
		verbFromPath = true
		parts = parts[1:]
	} else {
		info.Verb = methodVerb(req.Method)
	}

	if parts[0] == "namespaces" {
		if len(parts) > 1 {
			info.Namespace = parts[1]
			if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
				parts = parts[2:]
			}
		}
	}
	info.Parts = parts

	if len(parts) >= 3 && info.Verb != "proxy" {
		info.Subresource = parts[2]
	}
	if len(parts) >= 2 {
		info.Name = parts[1]
	}
	info.Resource = parts[0]

	q := req.URL.Query()
	if info.Name == "" && info.Verb == "get" {
		info.Verb = "list"
		if queryBool(q["watch"]) {
			info.Verb = "watch"
		}
		if n, ok := selectedName(q); ok {
			info.Name = n
		}
	}
	if info.Name == "" && info.Verb == "delete" {
		info.Verb = "deletecollection"
	}
	if !verbFromPath && (info.Verb == "list" || info.Verb == "watch" || info.Verb == "deletecollection") {
		info.FieldSelector = q.Get("fieldSelector")
		info.LabelSelector = q.Get("labelSelector")
	}
	return info, nil
}

// selectedName returns the name a list's fieldSelector requires
// (metadata.name=<n>) when every list option in q decodes (otherwise
// kube-apiserver ignores the options) and n is a valid path segment.
func selectedName(q url.Values) (string, bool) {
	if _, err := labels.Parse(q.Get("labelSelector")); err != nil {
		return "", false
	}
	for _, p := range []string{"limit", "timeoutSeconds"} {
		if v, ok := q[p]; ok && len(v) > 0 {
			if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
				return "", false
			}
		}
	}
	sel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return "", false
	}
	n, ok := sel.RequiresExactMatch("metadata.name")
	if !ok || len(content.IsPathSegmentName(n)) > 0 {
		return "", false
	}
	return n, true
}

func methodVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// queryBool reads a boolean query parameter as apimachinery's parameter
// codec does: absent, "0" or "false" (any case) are false, any other
// value, even empty, is true.
func queryBool(v []string) bool {
	return len(v) > 0 && v[0] != "0" && !strings.EqualFold(v[0], "false")
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Attributes returns the authorization attributes of a request made by u,
// described by info (from ParseRequestInfo).
func Attributes(u user.Info, info *genericrequest.RequestInfo) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		User:            u,
		Verb:            info.Verb,
		Namespace:       info.Namespace,
		APIGroup:        info.APIGroup,
		APIVersion:      info.APIVersion,
		Resource:        info.Resource,
		Subresource:     info.Subresource,
		Name:            info.Name,
		ResourceRequest: info.IsResourceRequest,
		Path:            info.Path,
	}
}
