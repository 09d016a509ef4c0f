package apiserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"k8s.io/client-go/openapi3"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// TestKubectlExplain: kubectl explain prints the field descriptions of the
// generated OpenAPI v3 schemas.
func TestKubectlExplain(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	k := newKubectl(t, s)
	out := k.run("explain", "pod.spec")
	wantContains(t, "explain pod.spec", out, "KIND:", "Pod", "VERSION:", "v1", "FIELD: spec <PodSpec>",
		"PodSpec is a description of a pod.", "containers\t<[]Container> -required-", "List of containers belonging to the pod.",
		"nodeName\t<string>")
	out = k.run("explain", "pod.spec.containers.resources")
	wantContains(t, "explain resources", out, "FIELD: resources <ResourceRequirements>",
		"limits\t<map[string]Quantity>", "Limits describes the maximum amount of compute resources allowed.")
	out = k.run("explain", "deployment.spec.replicas")
	wantContains(t, "explain replicas", out, "GROUP:", "apps", "FIELD: replicas <integer>", "Number of desired pods.")
	out = k.run("explain", "pods", "--recursive")
	wantContains(t, "explain --recursive", out, "apiVersion\t<string>", "metadata\t<ObjectMeta>", "creationTimestamp\t<string>")
	out = k.run("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
	wantContains(t, "explain IntOrString", out, "maxSurge <IntOrString>")
	// The create-only review resources have schemas too.
	out = k.run("explain", "selfsubjectaccessreviews.spec")
	wantContains(t, "explain review", out, "GROUP:", "authorization.k8s.io", "resourceAttributes\t<ResourceAttributes>")
	// OpenAPI v2 too (client-go fetches it as protobuf).
	out = k.run("explain", "service.spec.ports", "--output", "plaintext-openapiv2")
	wantContains(t, "explain v2", out, "RESOURCE: ports <[]Object>", "ServicePort contains information on service's port.", "port\t<integer> -required-", "The list of ports that are exposed by this service.")
	if _, errOut, err := k.try("explain", "pod.spec.bogus"); err == nil || !strings.Contains(errOut, `field "bogus" does not exist`) {
		t.Fatalf("explain of a missing field: err %v, stderr %q", err, errOut)
	}
}

// TestOpenAPIClients: client-go's OpenAPI v2 (protobuf) and v3 clients read
// the documents.
func TestOpenAPIClients(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	doc, err := s.Client.Discovery().OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range doc.GetDefinitions().GetAdditionalProperties() {
		if d.GetName() == "io.k8s.api.apps.v1.Deployment" {
			found = true
		}
	}
	if !found {
		t.Fatal("v2 document lacks io.k8s.api.apps.v1.Deployment")
	}

	root := openapi3.NewRoot(s.Client.Discovery().OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	if len(gvs) < 10 {
		t.Fatalf("group versions %v", gvs)
	}
	apps, err := root.GVSpec(gvs[0].WithResource("").GroupVersion())
	if err != nil {
		t.Fatal(err)
	}
	if apps.Components == nil || len(apps.Components.Schemas) == 0 {
		t.Fatalf("%v: no component schemas", gvs[0])
	}
	paths, err := s.Client.Discovery().OpenAPIV3().Paths()
	if err != nil {
		t.Fatal(err)
	}
	data, err := paths["apis/apps/v1"].Schema("application/json")
	if err != nil {
		t.Fatal(err)
	}
	var v3 struct {
		Components struct {
			Schemas map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &v3); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.PodSpec", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.api.autoscaling.v1.Scale"} {
		if _, ok := v3.Components.Schemas[n]; !ok {
			t.Errorf("apis/apps/v1 lacks %s", n)
		}
	}
	if _, ok := v3.Components.Schemas["io.k8s.api.core.v1.Node"]; ok {
		t.Error("apis/apps/v1 has io.k8s.api.core.v1.Node, which it does not refer to")
	}
}

// TestOpenAPIHTTP: the v3 index points at hashed URLs whose documents are
// cacheable for good; unknown group/versions are 404; v2 is JSON unless
// protobuf is asked for.
func TestOpenAPIHTTP(t *testing.T) {
	s := apiservertest.Start(t, nil)
	get := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, data
	}
	_, data := get("/openapi/v3", "")
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		}
	}
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	url := index.Paths["apis/apps/v1"].ServerRelativeURL
	if !strings.HasPrefix(url, "/openapi/v3/apis/apps/v1?hash=") || len(url) != len("/openapi/v3/apis/apps/v1?hash=")+128 {
		t.Fatalf("serverRelativeURL %q", url)
	}
	resp, data := get(url, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, immutable" || resp.Header.Get("Etag") == "" {
		t.Fatalf("hashed document: %d %v", resp.StatusCode, resp.Header)
	}
	var doc struct {
		OpenAPI string
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var patch struct {
		RequestBody struct{ Content map[string]any }
	}
	if err := json.Unmarshal(doc.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"], &patch); err != nil {
		t.Fatal(err)
	}
	if _, ok := patch.RequestBody.Content["application/strategic-merge-patch+json"]; !ok {
		t.Fatalf("deployment PATCH content types %v", patch.RequestBody.Content)
	}
	req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+url, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("Etag"))
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %v %v", r2, err)
	} else {
		r2.Body.Close()
	}
	if resp, _ := get("/openapi/v3/apis/apps/v1", ""); resp.Header.Get("Cache-Control") == "public, immutable" {
		t.Fatal("unhashed document marked immutable")
	}
	for _, p := range []string{"api/v1", "apis/authorization.k8s.io/v1", "apis/authentication.k8s.io/v1"} {
		if _, ok := index.Paths[p]; !ok {
			t.Errorf("/openapi/v3 lacks %s", p)
		}
	}
	_, data = get("/openapi/v3/api/v1", "")
	for _, p := range []string{`"/api/v1/namespaces/{namespace}/pods/{name}/binding"`, `"/api/v1/namespaces/{namespace}/pods/{name}/eviction"`,
		`"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"`, `"io.k8s.api.authentication.v1.TokenRequest"`, `"operationId":"patchPodStatus"`} {
		if !strings.Contains(string(data), p) {
			t.Errorf("/openapi/v3/api/v1 lacks %s", p)
		}
	}
	if resp, _ := get("/openapi/v3/apis/nope/v1", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown group/version: %d", resp.StatusCode)
	}
	resp, data = get("/openapi/v2", "application/json")
	if resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(data[:min(len(data), 200)]), `"swagger":"2.0"`) {
		t.Fatalf("v2 JSON: %v %.200s", resp.Header, data)
	}
	resp, _ = get("/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
	if resp.Header.Get("Content-Type") != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Fatalf("v2 protobuf content type %q", resp.Header.Get("Content-Type"))
	}
}
