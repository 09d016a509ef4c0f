package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

type httpResult struct {
	code   int
	body   []byte
	header http.Header
}

func do(t testing.TB, h http.Handler, method, path, contentType, body string, hdr ...string) httpResult {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return httpResult{rec.Code, rec.Body.Bytes(), rec.Header()}
}

func status(t testing.TB, r httpResult) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("not a Status (%v): %s", err, r.body)
	}
	return st
}

// TestBadInput checks that malformed requests get the status code and reason
// upstream gives, and leave the store untouched.
func TestBadInput(t *testing.T) {
	s := apiservertest.Start(t, nil)
	h := s.API.Handler()
	const pods = "/api/v1/namespaces/default/pods"
	okPod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 3<<20) + `"}}`
	cases := []struct {
		name, method, path, ct, body string
		code                         int
		reason                       metav1.StatusReason
		msg                          string
	}{
		{"malformed JSON", "POST", pods, "application/json", `{"apiVersion":`, 400, metav1.StatusReasonBadRequest, ""},
		{"wrong apiVersion", "POST", pods, "application/json", strings.Replace(okPod, `"v1"`, `"apps/v1"`, 1), 400, metav1.StatusReasonBadRequest, "does not match the expected API version"},
		{"wrong kind", "POST", pods, "application/json", strings.Replace(okPod, `"Pod"`, `"Service"`, 1), 400, metav1.StatusReasonBadRequest, "kind"},
		{"unknown field strict", "POST", pods + "?fieldValidation=Strict", "application/json", strings.Replace(okPod, `"spec":{`, `"spec":{"bogus":1,`, 1), 400, metav1.StatusReasonBadRequest, `unknown field "spec.bogus"`},
		{"duplicate field strict", "POST", pods + "?fieldValidation=Strict", "application/json", strings.Replace(okPod, `"kind":"Pod",`, `"kind":"Pod","kind":"Pod",`, 1), 400, metav1.StatusReasonBadRequest, "duplicate field"},
		{"bad fieldValidation", "POST", pods + "?fieldValidation=Loose", "application/json", okPod, 422, metav1.StatusReasonInvalid, `CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loose"`},
		{"bad dryRun", "POST", pods + "?dryRun=Maybe", "application/json", okPod, 422, metav1.StatusReasonInvalid, `CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value`},
		{"invalid name", "POST", pods, "application/json", strings.Replace(okPod, `"name":"p"`, `"name":"Not_Valid"`, 1), 422, metav1.StatusReasonInvalid, "metadata.name"},
		{"no name", "POST", pods, "application/json", strings.Replace(okPod, `"name":"p"`, `"labels":{}`, 1), 422, metav1.StatusReasonInvalid, "name or generateName is required"},
		{"other namespace", "POST", pods, "application/json", strings.Replace(okPod, `"name":"p"`, `"name":"p","namespace":"kube-system"`, 1), 400, metav1.StatusReasonBadRequest, "does not match the namespace"},
		{"unknown resource", "GET", "/api/v1/namespaces/default/frobs", "", "", 404, metav1.StatusReasonNotFound, ""},
		{"unknown group", "GET", "/apis/example.com/v1/things", "", "", 404, metav1.StatusReasonNotFound, ""},
		{"missing object", "GET", pods + "/nope", "", "", 404, metav1.StatusReasonNotFound, `pods "nope" not found`},
		{"bad label selector", "GET", pods + "?labelSelector=a+in+((", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"unsupported field selector", "GET", pods + "?fieldSelector=spec.bogus%3D1", "", "", 400, metav1.StatusReasonBadRequest, "field label not supported: spec.bogus"},
		{"bad resourceVersion", "GET", pods + "?resourceVersion=abc", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"match without version", "GET", pods + "?resourceVersionMatch=Exact", "", "", 422, metav1.StatusReasonInvalid, "resourceVersionMatch"},
		{"oversized body", "POST", "/api/v1/namespaces/default/configmaps", "application/json", big, 413, metav1.StatusReasonRequestEntityTooLarge, ""},
		{"unsupported patch type", "PATCH", pods + "/p", "text/plain", `{}`, 415, metav1.StatusReasonUnsupportedMediaType, ""},
		{"protobuf only", "GET", pods, "", "", 406, metav1.StatusReasonNotAcceptable, ""},
		{"cluster-scoped under namespace", "GET", "/api/v1/namespaces/default/nodes", "", "", 404, metav1.StatusReasonNotFound, ""},
	}
	rev0, _ := s.Store.Revision(context.Background())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.name == "protobuf only" {
				hdr = []string{"Accept", "application/vnd.kubernetes.protobuf"}
			}
			r := do(t, h, c.method, c.path, c.ct, c.body, hdr...)
			st := status(t, r)
			if r.code != c.code || int(st.Code) != c.code || st.Reason != c.reason || !strings.Contains(st.Message, c.msg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", r.code, st.Reason, st.Message, c.code, c.reason, c.msg)
			}
		})
	}
	if rev, _ := s.Store.Revision(context.Background()); rev != rev0 {
		t.Fatalf("bad input changed the store: revision %d -> %d", rev0, rev)
	}
	// The same pod, well-formed, is accepted; unknown fields only warn by default.
	r := do(t, h, "POST", pods, "application/json", strings.Replace(okPod, `"spec":{`, `"spec":{"bogus":1,`, 1))
	if r.code != 201 || !strings.Contains(r.header.Get("Warning"), `unknown field \"spec.bogus\"`) {
		t.Fatalf("warn mode: %d %q %s", r.code, r.header.Get("Warning"), r.body)
	}
}

func TestMaxInFlight(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, 4)
	s := apiservertest.Start(t, func(c *apiserver.Config) {
		c.MaxInFlight = 1
		c.Authentication = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("block") == "1" {
					entered <- struct{}{}
					<-block
				}
				next.ServeHTTP(w, r)
			})
		}
	})
	h := s.API.Handler()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); do(t, h, "GET", "/api/v1/namespaces?block=1", "", "") }()
	<-entered
	r := do(t, h, "GET", "/api/v1/namespaces", "", "")
	close(block)
	wg.Wait()
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || status(t, r).Reason != metav1.StatusReasonTooManyRequests {
		t.Fatalf("got %d, Retry-After %q: %s", r.code, r.header.Get("Retry-After"), r.body)
	}
}

func TestDiscovery(t *testing.T) {
	s := apiservertest.Start(t, nil)
	h := s.API.Handler()
	var rl metav1.APIResourceList
	r := do(t, h, "GET", "/api/v1", "", "")
	if err := json.Unmarshal(r.body, &rl); err != nil {
		t.Fatal(err)
	}
	found := map[string]metav1.APIResource{}
	for _, res := range rl.APIResources {
		found[res.Name] = res
	}
	if p := found["pods"]; !p.Namespaced || p.Kind != "Pod" || len(p.ShortNames) == 0 || p.ShortNames[0] != "po" || p.Categories[0] != "all" {
		t.Fatalf("pods: %+v", p)
	}
	for _, sub := range []string{"pods/status", "pods/binding", "pods/eviction", "nodes/status", "services/status"} {
		if _, ok := found[sub]; !ok {
			t.Errorf("missing %s", sub)
		}
	}
	var groups metav1.APIGroupList
	_ = json.Unmarshal(do(t, h, "GET", "/apis", "", "").body, &groups)
	names := map[string]bool{}
	for _, g := range groups.Groups {
		names[g.Name] = true
	}
	for _, g := range []string{"apps", "batch", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "policy", "rbac.authorization.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "resource.k8s.io", "networking.k8s.io"} {
		if !names[g] {
			t.Errorf("/apis lacks %s", g)
		}
	}
	r = do(t, h, "GET", "/apis", "", "", "Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(r.body, &agg); err != nil || !strings.Contains(r.header.Get("Content-Type"), "as=APIGroupDiscoveryList") || len(agg.Items) != len(groups.Groups) {
		t.Fatalf("aggregated: %v %q %d", err, r.header.Get("Content-Type"), len(agg.Items))
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		if r := do(t, h, "GET", p, "", ""); r.code != 200 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
}

func TestTables(t *testing.T) {
	s := apiservertest.Start(t, nil)
	h := s.API.Handler()
	const accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
	cases := []struct {
		path string
		cols []string
	}{
		{"/api/v1/namespaces/default/pods", []string{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"}},
		{"/api/v1/nodes", []string{"Name", "Status", "Roles", "Age", "Version"}},
		{"/api/v1/namespaces/default/services", []string{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"}},
		{"/apis/apps/v1/namespaces/default/deployments", []string{"Name", "Ready", "Up-to-date", "Available", "Age"}},
		{"/api/v1/namespaces", []string{"Name", "Status", "Age"}},
		{"/apis/coordination.k8s.io/v1/namespaces/default/leases", []string{"Name", "Holder", "Age"}},
		{"/apis/batch/v1/namespaces/default/jobs", []string{"Name", "Status", "Completions", "Duration", "Age"}},
		{"/apis/storage.k8s.io/v1/storageclasses", []string{"Name", "Age"}},
	}
	for _, c := range cases {
		r := do(t, h, "GET", c.path, "", "", "Accept", accept)
		var tbl metav1.Table
		if err := json.Unmarshal(r.body, &tbl); err != nil || tbl.Kind != "Table" {
			t.Fatalf("%s: %v %s", c.path, err, r.body)
		}
		for i, want := range c.cols {
			if i >= len(tbl.ColumnDefinitions) || tbl.ColumnDefinitions[i].Name != want {
				t.Errorf("%s: column %d is not %q: %+v", c.path, i, want, tbl.ColumnDefinitions)
				break
			}
		}
	}
	r := do(t, h, "GET", "/api/v1/namespaces", "", "", "Accept", accept)
	var tbl metav1.Table
	_ = json.Unmarshal(r.body, &tbl)
	if len(tbl.Rows) != 4 || tbl.Rows[0].Cells[1] != "Active" || !bytes.Contains(tbl.Rows[0].Object.Raw, []byte("PartialObjectMetadata")) {
		t.Fatalf("namespace rows: %+v", tbl.Rows)
	}
}

// FuzzDecodeRequest feeds arbitrary bodies, content types and query
// strings to the write paths: the server answers every one with a status
// and never panics.
func FuzzDecodeRequest(f *testing.F) {
	f.Add("POST", "application/json", "", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`)
	f.Add("PUT", "application/yaml", "fieldValidation=Strict", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
	f.Add("PATCH", "application/json-patch+json", "", `[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]`)
	f.Add("PATCH", "application/strategic-merge-patch+json", "", `{"spec":{"containers":[{"name":"c","$patch":"delete"}]}}`)
	f.Add("PATCH", "application/merge-patch+json", "dryRun=All", `{"metadata":{"resourceVersion":"x"}}`)
	f.Add("POST", "application/vnd.kubernetes.protobuf", "", "k8s\x00\x0a\x02")
	f.Add("DELETE", "application/json", "gracePeriodSeconds=-1", `{"propagationPolicy":"Nope"}`)
	f.Add("PATCH", "application/apply-patch+yaml", "fieldManager=m&force=true", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i, ports: [{containerPort: 80}]}]}\n")
	s := apiservertest.Start(f, nil)
	h := s.API.Handler()
	f.Fuzz(func(t *testing.T, method, ct, query, body string) {
		switch method {
		case "POST", "PUT", "PATCH", "DELETE":
		default:
			method = "POST"
		}
		path := "/api/v1/namespaces/default/pods"
		if method != "POST" {
			path += "/p"
		}
		req := httptest.NewRequest(method, "http://x"+path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusInternalServerError {
			b, _ := io.ReadAll(rec.Body)
			t.Fatalf("500 for %s %q %q %q: %s", method, ct, query, body, b)
		}
	})
}

// slowAdmission blocks until the request's context ends.
type slowAdmission struct{}

func (slowAdmission) Name() string { return "Slow" }

func (slowAdmission) Admit(ctx context.Context, _ *admission.Attributes) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestRequestTimeout(t *testing.T) {
	s := apiservertest.Start(t, func(c *apiserver.Config) { c.Admission = []admission.Plugin{slowAdmission{}} })
	r := do(t, s.API.Handler(), "POST", "/api/v1/namespaces/default/configmaps?timeout=50ms", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
	if st := status(t, r); r.code != http.StatusGatewayTimeout || st.Reason != metav1.StatusReasonTimeout {
		t.Fatalf("got %d %s: %s", r.code, st.Reason, r.body)
	}
}

// readEvents reads n watch events from a streaming GET against the test
// server.
func readEvents(t *testing.T, url, accept string, n int) []map[string]json.RawMessage {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch: %d %s", resp.StatusCode, b)
	}
	dec := json.NewDecoder(resp.Body)
	var out []map[string]json.RawMessage
	for len(out) < n {
		var ev map[string]json.RawMessage
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func TestWatchTableAndInitialEvents(t *testing.T) {
	s := apiservertest.Start(t, nil)
	// kubectl get -w: a watch of Tables, starting with the current state.
	evs := readEvents(t, s.HTTP.URL+"/api/v1/namespaces?watch=true&timeoutSeconds=5",
		"application/json;as=Table;v=v1;g=meta.k8s.io,application/json", 4)
	for _, ev := range evs {
		if string(ev["type"]) != `"ADDED"` || !bytes.Contains(ev["object"], []byte(`"kind":"Table"`)) {
			t.Fatalf("event %s %s", ev["type"], ev["object"])
		}
	}
	// sendInitialEvents: the state, then a bookmark marking its end.
	evs = readEvents(t, s.HTTP.URL+"/api/v1/namespaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=5", "", 5)
	if string(evs[4]["type"]) != `"BOOKMARK"` || !bytes.Contains(evs[4]["object"], []byte(metav1.InitialEventsAnnotationKey)) {
		t.Fatalf("last event %s %s", evs[4]["type"], evs[4]["object"])
	}
	// sendInitialEvents without bookmarks is invalid.
	r := do(t, s.API.Handler(), "GET", "/api/v1/namespaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "", "")
	if st := status(t, r); r.code != 422 || st.Reason != metav1.StatusReasonInvalid {
		t.Fatalf("got %d %s", r.code, st.Reason)
	}
}

// recordingAdmission records what it is asked to admit.
type recordingAdmission struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingAdmission) Name() string { return "Recording" }

func (r *recordingAdmission) Admit(_ context.Context, a *admission.Attributes) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("admit %s %s/%s %s/%s %T", a.Operation, a.Resource.Resource, a.Subresource, a.Namespace, a.Name, a.Object))
	return nil
}

func (r *recordingAdmission) Validate(_ context.Context, a *admission.Attributes) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("validate %s %s/%s %s/%s", a.Operation, a.Resource.Resource, a.Subresource, a.Namespace, a.Name))
	if a.Operation == admission.Create && a.Name == "forbidden" {
		return apierrors.NewForbidden(schema.GroupResource{Resource: a.Resource.Resource}, a.Name, errors.New("denied by test admission"))
	}
	return nil
}

func TestAdmissionHook(t *testing.T) {
	rec := &recordingAdmission{}
	s := apiservertest.Start(t, func(c *apiserver.Config) { c.Admission = []admission.Plugin{rec} })
	h := s.API.Handler()
	pod := func(name string) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	}
	rec.calls = nil
	if r := do(t, h, "POST", "/api/v1/namespaces/default/pods", "application/json", pod("p")); r.code != 201 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	if r := do(t, h, "POST", "/api/v1/namespaces/default/pods/p/binding", "application/json", `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n"}}`); r.code != 201 {
		t.Fatalf("bind: %d %s", r.code, r.body)
	}
	if r := do(t, h, "DELETE", "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0", "", ""); r.code != 200 {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	want := []string{
		"admit CREATE pods/ default/p *v1.Pod", "validate CREATE pods/ default/p",
		"admit CREATE pods/binding default/p *v1.Binding", "validate CREATE pods/binding default/p",
		"validate DELETE pods/ default/p",
	}
	if strings.Join(rec.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("admission calls:\n%s\nwant:\n%s", strings.Join(rec.calls, "\n"), strings.Join(want, "\n"))
	}
	r := do(t, h, "POST", "/api/v1/namespaces/default/pods", "application/json", pod("forbidden"))
	if st := status(t, r); r.code != 403 || st.Reason != metav1.StatusReasonForbidden {
		t.Fatalf("denied create: %d %s", r.code, r.body)
	}
}

func TestSubresourceValidation(t *testing.T) {
	s := apiservertest.Start(t, nil)
	h := s.API.Handler()
	dep := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	if r := do(t, h, "POST", "/apis/apps/v1/namespaces/default/deployments", "application/json", dep); r.code != 201 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	r := do(t, h, "PATCH", "/apis/apps/v1/namespaces/default/deployments/d/scale", "application/merge-patch+json", `{"spec":{"replicas":-1}}`)
	if st := status(t, r); r.code != 422 || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "spec.replicas" {
		t.Fatalf("negative scale: %d %s", r.code, r.body)
	}
	if r := do(t, h, "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`); r.code != 201 {
		t.Fatalf("pod: %d", r.code)
	}
	r = do(t, h, "POST", "/api/v1/namespaces/default/pods/p/binding", "application/json", `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{}}`)
	if st := status(t, r); r.code != 422 || st.Details.Causes[0].Field != "target.name" {
		t.Fatalf("empty binding target: %d %s", r.code, r.body)
	}
}
