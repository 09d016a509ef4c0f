package authz

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
)

var (
	getList  = l("get", "list", "watch")
	testRBAC = &Policy{
		ClusterRoles: []*rbacv1.ClusterRole{
			clusterRole("pod-reader", rule(getList, l(""), l("pods"))),
			clusterRole("status-writer", rule(l("update", "patch"), l(""), l("pods/status"))),
			clusterRole("any-status", rule(l("get"), l("*"), l("*/status"))),
			clusterRole("named-cm", named(rule(l("get", "update"), l(""), l("configmaps")), "cm1")),
			clusterRole("paths", urls(l("get"), "/metrics", "/logs/*")),
			clusterRole("apps-all", rule(l("*"), l("apps"), l("*"))),
		},
		ClusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			clusterBinding("alice-reads-pods", "pod-reader", userSubj("alice")),
			clusterBinding("monitors", "paths", groupSubj("monitors")),
			clusterBinding("sam-status", "any-status", userSubj("sam")),
			clusterBinding("dangling", "no-such-role", userSubj("dave")),
		},
		Roles: []*rbacv1.Role{
			role("ns1", "secret-reader", rule(l("get"), l(""), l("secrets"))),
			role("ns2", "secret-reader", rule(l("*"), l("*"), l("*"))),
		},
		RoleBindings: []*rbacv1.RoleBinding{
			binding("ns1", "bob-secrets", "Role", "secret-reader", userSubj("bob")),
			binding("ns1", "devs-cm", "ClusterRole", "named-cm", groupSubj("devs")),
			binding("ns1", "builder-status", "ClusterRole", "status-writer", saSubj("", "builder")),
			binding("ns1", "foreign-sa-apps", "ClusterRole", "apps-all", saSubj("other", "deployer")),
			binding("ns1", "alice-role-from-ns2", "Role", "nope", userSubj("alice")),
		},
	}
)

func TestRBACAuthorize(t *testing.T) {
	alice, bob, dev, sam, mon := usr("alice"), usr("bob"), usr("carol", "devs"), usr("sam"), usr("mo", "monitors")
	builder := usr("system:serviceaccount:ns1:builder", "system:serviceaccounts")
	deployer := usr("system:serviceaccount:other:deployer")
	root := usr("root", user.SystemPrivilegedGroup)
	for _, tc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
		allow bool
	}{
		// verbs and cluster-wide bindings
		{"cluster binding allows list in any namespace", req(alice, "list", "", "ns9", "pods", ""), true},
		{"cluster binding allows list at cluster scope", req(alice, "list", "", "", "pods", ""), true},
		{"cluster binding allows watch", req(alice, "watch", "", "default", "pods", ""), true},
		{"verb not granted", req(alice, "delete", "", "default", "pods", "p"), false},
		{"resource not granted", req(alice, "get", "", "default", "secrets", "s"), false},
		{"wrong group", req(alice, "get", "apps", "default", "pods", "p"), false},
		{"unbound user", req(usr("mallory"), "get", "", "default", "pods", "p"), false},
		// subresources
		{"rule on pods does not cover pods/status", req(alice, "get", "", "default", "pods/status", "p"), false},
		{"pods/status rule allows status", req(builder, "update", "", "ns1", "pods/status", "p"), true},
		{"pods/status rule does not cover pods", req(builder, "update", "", "ns1", "pods", "p"), false},
		{"*/status covers any status", req(sam, "get", "apps", "x", "deployments/status", "d"), true},
		{"*/status does not cover scale", req(sam, "get", "apps", "x", "deployments/scale", "d"), false},
		{"*/status does not cover the resource", req(sam, "get", "", "x", "pods", "p"), false},
		{"* covers subresources", req(deployer, "update", "apps", "ns1", "deployments/scale", "d"), true},
		// resourceNames
		{"resourceName matches", req(dev, "get", "", "ns1", "configmaps", "cm1"), true},
		{"other name", req(dev, "get", "", "ns1", "configmaps", "cm2"), false},
		{"list has no name", req(dev, "list", "", "ns1", "configmaps", ""), false},
		{"create has no name", req(dev, "create", "", "ns1", "configmaps", ""), false},
		// namespaced bindings
		{"role binding allows in its namespace", req(bob, "get", "", "ns1", "secrets", "s"), true},
		{"role binding does not reach another namespace", req(bob, "get", "", "ns2", "secrets", "s"), false},
		{"role binding does not reach cluster scope", req(bob, "get", "", "", "secrets", "s"), false},
		{"cluster role via role binding is namespaced", req(dev, "get", "", "ns2", "configmaps", "cm1"), false},
		{"service account subject defaults to binding namespace", req(builder, "patch", "", "ns1", "pods/status", "p"), true},
		{"service account in another namespace", req(deployer, "create", "apps", "ns1", "deployments", ""), true},
		{"service account binding elsewhere", req(deployer, "create", "apps", "ns2", "deployments", ""), false},
		{"same name SA of another namespace", req(usr("system:serviceaccount:ns2:builder"), "update", "", "ns1", "pods/status", "p"), false},
		// non-resource URLs
		{"exact path", pathReq(mon, "get", "/metrics"), true},
		{"prefix path", pathReq(mon, "get", "/logs/kubelet.log"), true},
		{"prefix itself without slash", pathReq(mon, "get", "/logs"), false},
		{"path verb", pathReq(mon, "post", "/metrics"), false},
		{"other path", pathReq(mon, "get", "/healthz"), false},
		{"path rule does not grant resources", req(mon, "get", "", "", "metrics", ""), false},
		// masters
		{"system:masters resource", req(root, "delete", "", "kube-system", "secrets", "x"), true},
		{"system:masters path", pathReq(root, "get", "/anything"), true},
		// broken references
		{"missing cluster role grants nothing", req(usr("dave"), "get", "", "", "pods", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, err := New(testRBAC).Authorize(context.Background(), tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if got := d == authorizer.DecisionAllow; got != tc.allow {
				t.Errorf("allowed = %v, want %v (reason %q)", got, tc.allow, reason)
			}
		})
	}
}

func TestRBACReasons(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attrs  authorizer.AttributesRecord
		reason string
	}{
		{"cluster binding", req(usr("alice"), "get", "", "x", "pods", "p"),
			`RBAC: allowed by ClusterRoleBinding "alice-reads-pods" of ClusterRole "pod-reader" to User "alice"`},
		{"role binding to group", req(usr("c", "devs"), "get", "", "ns1", "configmaps", "cm1"),
			`RBAC: allowed by RoleBinding "ns1/devs-cm" of ClusterRole "named-cm" to Group "devs"`},
		{"service account", req(usr("system:serviceaccount:ns1:builder"), "update", "", "ns1", "pods/status", "p"),
			`RBAC: allowed by RoleBinding "ns1/builder-status" of ClusterRole "status-writer" to ServiceAccount "ns1/builder"`},
		{"plain denial", req(usr("bob"), "get", "", "", "secrets", "s"), ""},
		{"missing cluster role", req(usr("dave"), "get", "", "", "pods", ""),
			`RBAC: clusterrole.rbac.authorization.k8s.io "no-such-role" not found`},
		{"missing role", req(usr("alice"), "delete", "", "ns1", "pods", "p"),
			`RBAC: role.rbac.authorization.k8s.io "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, reason, _ := New(testRBAC).Authorize(context.Background(), tc.attrs)
			if reason != tc.reason {
				t.Errorf("reason %q\nwant   %q", reason, tc.reason)
			}
		})
	}
}

type failingLister struct{ Policy }

func (failingLister) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	return nil, errors.New("store down")
}

func TestRBACListerError(t *testing.T) {
	d, reason, err := New(&failingLister{}).Authorize(context.Background(), req(usr("alice"), "get", "", "", "pods", ""))
	if err != nil || d == authorizer.DecisionAllow || reason != "RBAC: store down" {
		t.Errorf("decision %v reason %q err %v", d, reason, err)
	}
}

func TestForbiddenMessage(t *testing.T) {
	x := usr("x")
	for _, tc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  string
	}{
		{"namespaced list", req(x, "list", "", "default", "pods", ""),
			`pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "default"`},
		{"named cluster-scoped", req(x, "get", "", "", "nodes", "n1"),
			`nodes "n1" is forbidden: User "x" cannot get resource "nodes" in API group "" at the cluster scope`},
		{"group and subresource", req(x, "update", "apps", "web", "deployments/scale", "d"),
			`deployments.apps "d" is forbidden: User "x" cannot update resource "deployments/scale" in API group "apps" in the namespace "web"`},
		{"non-resource", pathReq(x, "get", "/metrics"),
			`forbidden: User "x" cannot get path "/metrics"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Forbidden(tc.attrs, "")
			if err.Error() != tc.want {
				t.Errorf("message %q\nwant    %q", err.Error(), tc.want)
			}
			if !apierrors.IsForbidden(err) || err.Status().Code != 403 {
				t.Errorf("not a 403 Forbidden: %+v", err.Status())
			}
		})
	}
	if got := Forbidden(req(x, "get", "", "", "pods", ""), "RBAC: boom").Error(); !strings.HasSuffix(got, `at the cluster scope: RBAC: boom`) {
		t.Errorf("reason not appended: %q", got)
	}
}

// TestMiddleware runs a request through authz.Middleware with a user in
// the context, as authn.Middleware leaves it.
func TestMiddleware(t *testing.T) {
	var seen *string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := RequestInfoFrom(r.Context())
		if ok {
			s := info.Verb + " " + info.Resource
			seen = &s
		}
		w.WriteHeader(200)
	})
	h := Middleware(New(testRBAC), next)
	for _, tc := range []struct {
		name     string
		user     user.Info // nil: none in the context
		method   string
		url      string
		wantCode int
		wantMsg  string
		wantSeen string
	}{
		{name: "allowed", user: usr("alice"), method: "GET", url: "/api/v1/namespaces/default/pods", wantCode: 200, wantSeen: "list pods"},
		{name: "forbidden", user: usr("x"), method: "GET", url: "/api/v1/namespaces/default/pods", wantCode: 403,
			wantMsg: `pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "default"`},
		{name: "forbidden path", user: usr("x"), method: "GET", url: "/metrics", wantCode: 403,
			wantMsg: `forbidden: User "x" cannot get path "/metrics"`},
		{name: "no user", method: "GET", url: "/api/v1/pods", wantCode: 500},
		{name: "bad path", user: usr("alice"), method: "GET", url: "/api/v1/watch", wantCode: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			r := httptest.NewRequest(tc.method, tc.url, nil)
			if tc.user != nil {
				r = r.WithContext(authn.WithUser(r.Context(), tc.user))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantCode == 200 {
				if seen == nil || *seen != tc.wantSeen {
					t.Errorf("handler saw %v, want %q", seen, tc.wantSeen)
				}
				return
			}
			if seen != nil {
				t.Error("next handler was called")
			}
			body, _ := io.ReadAll(w.Body)
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" || int(st.Code) != tc.wantCode {
				t.Fatalf("not a Status with code %d: %s", tc.wantCode, body)
			}
			if tc.wantCode == 403 && (st.Message != tc.wantMsg || st.Reason != metav1.StatusReasonForbidden) {
				t.Errorf("status %q %q\nwant %q", st.Reason, st.Message, tc.wantMsg)
			}
		})
	}
}

func TestReviews(t *testing.T) {
	az := New(testRBAC)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		user      user.Info
		spec      authorizationv1.SelfSubjectAccessReviewSpec
		allowed   bool
		evalError bool
	}{
		{"can list pods", usr("alice"), authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"}}, true, false},
		{"cannot delete pods", usr("alice"), authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: "default"}}, false, false},
		{"subresource", usr("system:serviceaccount:ns1:builder"), authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "update", Resource: "pods", Subresource: "status", Namespace: "ns1"}}, true, false},
		{"named", usr("c", "devs"), authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Name: "cm1", Namespace: "ns1"}}, true, false},
		{"non-resource", usr("m", "monitors"), authorizationv1.SelfSubjectAccessReviewSpec{
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/metrics"}}, true, false},
		{"neither attributes", usr("alice"), authorizationv1.SelfSubjectAccessReviewSpec{}, false, true},
		{"both attributes", usr("alice"), authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes:    &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/"}}, false, true},
	} {
		t.Run("self "+tc.name, func(t *testing.T) {
			st := ReviewSelf(ctx, az, tc.user, tc.spec)
			if st.Allowed != tc.allowed || (st.EvaluationError != "") != tc.evalError {
				t.Errorf("status %+v, want allowed=%v evalError=%v", st, tc.allowed, tc.evalError)
			}
		})
		t.Run("subject "+tc.name, func(t *testing.T) {
			st := ReviewSubject(ctx, az, authorizationv1.SubjectAccessReviewSpec{
				ResourceAttributes:    tc.spec.ResourceAttributes,
				NonResourceAttributes: tc.spec.NonResourceAttributes,
				User:                  tc.user.GetName(),
				Groups:                tc.user.GetGroups(),
			})
			if st.Allowed != tc.allowed || (st.EvaluationError != "") != tc.evalError {
				t.Errorf("status %+v, want allowed=%v evalError=%v", st, tc.allowed, tc.evalError)
			}
		})
	}
}

func TestReviewRules(t *testing.T) {
	st := ReviewRules(context.Background(), New(testRBAC), usr("c", "devs"), "ns1")
	if len(st.ResourceRules) != 1 || st.ResourceRules[0].ResourceNames[0] != "cm1" || st.Incomplete {
		t.Errorf("rules %+v", st)
	}
	st = ReviewRules(context.Background(), New(testRBAC), usr("alice"), "ns1")
	if !st.Incomplete || st.EvaluationError == "" || len(st.ResourceRules) != 1 {
		t.Errorf("missing role not reported: %+v", st)
	}
	st = ReviewRules(context.Background(), New(testRBAC), usr("root", user.SystemPrivilegedGroup), "")
	if len(st.ResourceRules) != 1 || st.ResourceRules[0].Verbs[0] != "*" {
		t.Errorf("masters rules %+v", st)
	}
}

// TestMiddlewareUsesContextRequestInfo: a RequestInfo the core already put
// in the context is what gets authorized (not a second parse).
func TestMiddlewareUsesContextRequestInfo(t *testing.T) {
	called := false
	h := Filter(New(testRBAC))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	for _, tc := range []struct {
		name     string
		info     genericrequest.RequestInfo
		wantCode int
	}{
		{"context says list pods", genericrequest.RequestInfo{IsResourceRequest: true, Verb: "list", APIVersion: "v1", Resource: "pods", Namespace: "x"}, 200},
		{"context says delete pods", genericrequest.RequestInfo{IsResourceRequest: true, Verb: "delete", APIVersion: "v1", Resource: "pods", Namespace: "x", Name: "p"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called = false
			r := httptest.NewRequest("GET", "/api/v1/namespaces/x/pods", nil) // parsed alone: list pods
			info := tc.info
			r = r.WithContext(genericrequest.WithRequestInfo(authn.WithUser(r.Context(), usr("alice")), &info))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || called != (tc.wantCode == 200) {
				t.Errorf("code %d called %v, want %d", w.Code, called, tc.wantCode)
			}
		})
	}
}
