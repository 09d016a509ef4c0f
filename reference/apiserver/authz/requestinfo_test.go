package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
)

type infoCase struct {
	name, method, url string
	want              genericrequest.RequestInfo // Path, Parts, selectors not compared
}

var requestInfoCases = []infoCase{
	{"discovery root", "GET", "/api", genericrequest.RequestInfo{Verb: "get"}},
	{"core version", "GET", "/api/v1", genericrequest.RequestInfo{Verb: "get"}},
	{"group version", "GET", "/apis/apps/v1", genericrequest.RequestInfo{Verb: "get"}},
	{"healthz", "GET", "/healthz", genericrequest.RequestInfo{Verb: "get"}},
	{"non-resource post", "POST", "/logs/x", genericrequest.RequestInfo{Verb: "post"}},
	{"list pods all namespaces", "GET", "/api/v1/pods",
		res("list", "", "v1", "", "pods", "", "")},
	{"list pods in namespace", "GET", "/api/v1/namespaces/default/pods",
		res("list", "", "v1", "default", "pods", "", "")},
	{"watch by query", "GET", "/api/v1/namespaces/default/pods?watch=true",
		res("watch", "", "v1", "default", "pods", "", "")},
	{"watch=1", "GET", "/api/v1/pods?watch=1", res("watch", "", "v1", "", "pods", "", "")},
	{"watch=false is a list", "GET", "/api/v1/pods?watch=false", res("list", "", "v1", "", "pods", "", "")},
	{"legacy watch path", "GET", "/api/v1/watch/namespaces/default/pods",
		res("watch", "", "v1", "default", "pods", "", "")},
	{"legacy watch of one", "GET", "/api/v1/watch/namespaces/default/pods/web",
		res("watch", "", "v1", "default", "pods", "web", "")},
	{"get pod", "GET", "/api/v1/namespaces/default/pods/web",
		res("get", "", "v1", "default", "pods", "web", "")},
	{"head pod", "HEAD", "/api/v1/namespaces/default/pods/web",
		res("get", "", "v1", "default", "pods", "web", "")},
	{"create pod", "POST", "/api/v1/namespaces/default/pods",
		res("create", "", "v1", "default", "pods", "", "")},
	{"update pod status", "PUT", "/api/v1/namespaces/default/pods/web/status",
		res("update", "", "v1", "default", "pods", "web", "status")},
	{"patch pod", "PATCH", "/api/v1/namespaces/default/pods/web",
		res("patch", "", "v1", "default", "pods", "web", "")},
	{"bind pod", "POST", "/api/v1/namespaces/default/pods/web/binding",
		res("create", "", "v1", "default", "pods", "web", "binding")},
	{"legacy bindings", "POST", "/api/v1/namespaces/default/bindings",
		res("create", "", "v1", "default", "bindings", "", "")},
	{"delete pod", "DELETE", "/api/v1/namespaces/default/pods/web",
		res("delete", "", "v1", "default", "pods", "web", "")},
	{"delete collection", "DELETE", "/api/v1/namespaces/default/pods",
		res("deletecollection", "", "v1", "default", "pods", "", "")},
	{"list namespaces", "GET", "/api/v1/namespaces", res("list", "", "v1", "", "namespaces", "", "")},
	{"get namespace", "GET", "/api/v1/namespaces/kube-system",
		res("get", "", "v1", "kube-system", "namespaces", "kube-system", "")},
	{"namespace status", "PUT", "/api/v1/namespaces/ns1/status",
		res("update", "", "v1", "ns1", "namespaces", "ns1", "status")},
	{"namespace finalize", "PUT", "/api/v1/namespaces/ns1/finalize",
		res("update", "", "v1", "ns1", "namespaces", "ns1", "finalize")},
	{"node status", "PATCH", "/api/v1/nodes/n1/status", res("patch", "", "v1", "", "nodes", "n1", "status")},
	{"deployment scale", "PUT", "/apis/apps/v1/namespaces/web/deployments/d/scale",
		res("update", "apps", "v1", "web", "deployments", "d", "scale")},
	{"cluster role", "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
		res("get", "rbac.authorization.k8s.io", "v1", "", "clusterroles", "admin", "")},
	{"lease list with name selector", "GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?fieldSelector=metadata.name%3Dkube-scheduler",
		res("list", "coordination.k8s.io", "v1", "kube-system", "leases", "kube-scheduler", "")},
	{"watch with name selector", "GET", "/api/v1/namespaces/ns/configmaps?watch=true&fieldSelector=metadata.name%3Dcm",
		res("watch", "", "v1", "ns", "configmaps", "cm", "")},
	{"name selector with other field", "GET", "/api/v1/pods?fieldSelector=metadata.name%3Dp,spec.nodeName%3Dn",
		res("list", "", "v1", "", "pods", "p", "")},
	{"inequality selector names nothing", "GET", "/api/v1/pods?fieldSelector=metadata.name!%3Dp",
		res("list", "", "v1", "", "pods", "", "")},
	{"proxy has no subresource", "GET", "/api/v1/proxy/namespaces/ns/pods/p/some/path",
		res("proxy", "", "v1", "ns", "pods", "p", "")},
	{"pod proxy subresource", "GET", "/api/v1/namespaces/ns/pods/p/proxy/some/path",
		res("get", "", "v1", "ns", "pods", "p", "proxy")},
	{"watch= is true", "GET", "/api/v1/pods?watch=", res("watch", "", "v1", "", "pods", "", "")},
	{"watch=FALSE is false", "GET", "/api/v1/pods?watch=FALSE", res("list", "", "v1", "", "pods", "", "")},
	{"bad limit drops the selected name", "GET", "/api/v1/pods?limit=x&fieldSelector=metadata.name%3Dp",
		res("list", "", "v1", "", "pods", "", "")},
	{"bad label selector drops the selected name", "GET", "/api/v1/pods?labelSelector=a%3D%3D%3Db&fieldSelector=metadata.name%3Dp",
		res("list", "", "v1", "", "pods", "", "")},
	{"unknown method", "OPTIONS", "/api/v1/pods", res("", "", "v1", "", "pods", "", "")},
	{"trailing slash", "GET", "/api/v1/namespaces/default/pods/", res("list", "", "v1", "default", "pods", "", "")},
}

func res(verb, group, version, ns, resource, name, sub string) genericrequest.RequestInfo {
	return genericrequest.RequestInfo{
		IsResourceRequest: true, Verb: verb, APIGroup: group, APIVersion: version,
		Namespace: ns, Resource: resource, Name: name, Subresource: sub,
	}
}

func TestParseRequestInfo(t *testing.T) {
	for _, tc := range requestInfoCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequestInfo(httptest.NewRequest(tc.method, tc.url, nil))
			if err != nil {
				t.Fatal(err)
			}
			g := *got
			g.Path, g.Parts, g.APIPrefix, g.FieldSelector, g.LabelSelector = "", nil, "", "", ""
			if !reflect.DeepEqual(g, tc.want) {
				t.Errorf("got  %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

// TestParseRequestInfoMatchesUpstream compares every case with
// k8s.io/apiserver's own RequestInfoFactory, which kube-apiserver uses.
func TestParseRequestInfoMatchesUpstream(t *testing.T) {
	upstream := &genericrequest.RequestInfoFactory{
		APIPrefixes:          sets.NewString("api", "apis"),
		GrouplessAPIPrefixes: sets.NewString("api"),
	}
	for _, tc := range requestInfoCases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.url, nil)
			want, err := upstream.NewRequestInfo(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseRequestInfo(req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got      %+v\nupstream %+v", got, want)
			}
		})
	}
}

func TestParseRequestInfoErrors(t *testing.T) {
	for _, url := range []string{"/api/v1/watch", "/apis/apps/v1/proxy"} {
		t.Run(url, func(t *testing.T) {
			if _, err := ParseRequestInfo(httptest.NewRequest("GET", url, nil)); !errors.Is(err, ErrBadRequestPath) {
				t.Errorf("err = %v, want ErrBadRequestPath", err)
			}
		})
	}
}

// FuzzParseRequestInfo checks ParseRequestInfo against upstream's
// RequestInfoFactory on arbitrary methods, paths and queries.
func FuzzParseRequestInfo(f *testing.F) {
	for _, tc := range requestInfoCases {
		f.Add(tc.method, tc.url)
	}
	f.Add("GET", "/api/v1/watch")
	f.Add("GET", "/apis/apps/v1/namespaces/x/deployments?watch=no&fieldSelector=metadata.name%3D..")
	upstream := &genericrequest.RequestInfoFactory{
		APIPrefixes:          sets.NewString("api", "apis"),
		GrouplessAPIPrefixes: sets.NewString("api"),
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	f.Fuzz(func(t *testing.T, method, rawURL string) {
		m := methods[len(method)%len(methods)]
		u, err := url.ParseRequestURI(rawURL)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		req := &http.Request{Method: m, URL: u, Header: http.Header{}}
		want, wantErr := upstream.NewRequestInfo(req)
		got, gotErr := ParseRequestInfo(req)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("%s %s: error %v, upstream %v", m, rawURL, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %s:\ngot      %+v\nupstream %+v", m, rawURL, got, want)
		}
	})
}
