package authz

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kubelab/kubelab/reference/apiserver/authn"
)

func TestImpersonation(t *testing.T) {
	p := &Policy{
		ClusterRoles: []*rbacv1.ClusterRole{
			clusterRole("impersonate-bob", named(rule(l("impersonate"), l(""), l("users")), "bob"),
				named(rule(l("impersonate"), l(""), l("groups")), "devs"),
				named(rule(l("impersonate"), l("authentication.k8s.io"), l("userextras/scopes")), "view")),
			clusterRole("impersonate-sa", named(rule(l("impersonate"), l(""), l("serviceaccounts")), "builder")),
		},
		ClusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			clusterBinding("jane-as-bob", "impersonate-bob", userSubj("jane")),
		},
		RoleBindings: []*rbacv1.RoleBinding{
			binding("ci", "jane-as-builder", "ClusterRole", "impersonate-sa", userSubj("jane")),
		},
	}
	type seen struct {
		name    string
		uid     string
		groups  []string
		extra   map[string][]string
		headers bool
	}
	var got *seen
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := authn.UserFrom(r.Context())
		hasHeaders := false
		for h := range r.Header {
			hasHeaders = hasHeaders || strings.HasPrefix(h, "Impersonate-")
		}
		got = &seen{u.GetName(), u.GetUID(), u.GetGroups(), u.GetExtra(), hasHeaders}
	})
	h := Impersonation(New(p), next)
	jane := usr("jane", user.AllAuthenticated)
	admin := usr("admin", user.SystemPrivilegedGroup)
	for _, tc := range []struct {
		name       string
		requester  user.Info
		headers    map[string][]string
		wantCode   int
		wantMsg    string
		wantUser   string
		wantGroups []string
		wantExtra  map[string][]string
	}{
		{name: "no headers", requester: jane, wantCode: 200, wantUser: "jane", wantGroups: l(user.AllAuthenticated)},
		{name: "as bob", requester: jane, headers: map[string][]string{"Impersonate-User": {"bob"}},
			wantCode: 200, wantUser: "bob", wantGroups: l(user.AllAuthenticated)},
		{name: "as bob in devs", requester: jane, headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"devs"}},
			wantCode: 200, wantUser: "bob", wantGroups: l("devs", user.AllAuthenticated)},
		{name: "with an allowed extra", requester: jane, headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Extra-Scopes": {"view"}},
			wantCode: 200, wantUser: "bob", wantGroups: l(user.AllAuthenticated), wantExtra: map[string][]string{"scopes": {"view"}}},
		{name: "as alice", requester: jane, headers: map[string][]string{"Impersonate-User": {"alice"}}, wantCode: 403,
			wantMsg: `users "alice" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope`},
		{name: "as bob in masters", requester: jane, headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"system:masters"}}, wantCode: 403,
			wantMsg: `groups "system:masters" is forbidden: User "jane" cannot impersonate resource "groups" in API group "" at the cluster scope`},
		{name: "with a denied extra", requester: jane, headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Extra-Scopes": {"admin"}}, wantCode: 403,
			wantMsg: `userextras.authentication.k8s.io "admin" is forbidden: User "jane" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope`},
		{name: "with a uid", requester: jane, headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Uid": {"u1"}}, wantCode: 403,
			wantMsg: `uids.authentication.k8s.io "u1" is forbidden`},
		{name: "as a service account", requester: jane, headers: map[string][]string{"Impersonate-User": {"system:serviceaccount:ci:builder"}},
			wantCode: 200, wantUser: "system:serviceaccount:ci:builder", wantGroups: l("system:serviceaccounts", "system:serviceaccounts:ci", user.AllAuthenticated)},
		{name: "as a service account elsewhere", requester: jane, headers: map[string][]string{"Impersonate-User": {"system:serviceaccount:prod:builder"}}, wantCode: 403,
			wantMsg: `serviceaccounts "builder" is forbidden: User "jane" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "prod"`},
		{name: "group without user", requester: jane, headers: map[string][]string{"Impersonate-Group": {"devs"}}, wantCode: 400},
		{name: "admin as anyone, anonymous", requester: admin, headers: map[string][]string{"Impersonate-User": {user.Anonymous}},
			wantCode: 200, wantUser: user.Anonymous, wantGroups: l(user.AllUnauthenticated)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest("GET", "/api/v1/pods", nil)
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			r = r.WithContext(authn.WithUser(r.Context(), tc.requester))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantCode != 200 {
				if got != nil {
					t.Error("next was called")
				}
				var st metav1.Status
				json.Unmarshal(w.Body.Bytes(), &st)
				if !strings.HasPrefix(st.Message, tc.wantMsg) {
					t.Errorf("message %q\nwant    %q", st.Message, tc.wantMsg)
				}
				return
			}
			if got.name != tc.wantUser || !slices.Equal(got.groups, tc.wantGroups) || got.headers {
				t.Errorf("next saw %+v, want user %q groups %q and no Impersonate headers", got, tc.wantUser, tc.wantGroups)
			}
			if len(tc.wantExtra) > 0 && !slices.Equal(got.extra["scopes"], tc.wantExtra["scopes"]) {
				t.Errorf("extra %v, want %v", got.extra, tc.wantExtra)
			}
		})
	}
}
