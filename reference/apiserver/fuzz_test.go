package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// fuzzTargets are the collections FuzzRequestDecoding sends requests to,
// each with an object that exists when the fuzzer starts.
var fuzzTargets = []struct{ collection, object, body string }{
	{"/api/v1/namespaces/default/pods", "p", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},"spec":{"nodeName":"n","containers":[{"name":"c","image":"i"}]}}`},
	{"/api/v1/namespaces/default/configmaps", "cm", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"k":"v"}}`},
	{"/api/v1/namespaces/default/services", "svc", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc"},"spec":{"selector":{"a":"b"},"ports":[{"port":80}]}}`},
	{"/apis/apps/v1/namespaces/default/deployments", "d", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`},
	{"/api/v1/nodes", "n", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"}}`},
	{"/apis/coordination.k8s.io/v1/namespaces/default/leases", "l", `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"holderIdentity":"x"}}`},
	{"/apis/batch/v1/namespaces/default/jobs", "j", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}}}}`},
}

// FuzzRequestDecoding sends arbitrary bodies, content types and query
// strings (selectors, limit, continue, resourceVersion, ...) to the
// collection and object paths of several kinds, with every verb: the
// server answers each with a metav1.Status or an object, never a panic or
// an internal error.
func FuzzRequestDecoding(f *testing.F) {
	for i, t := range fuzzTargets {
		k := uint8(i)
		f.Add(k, "POST", "application/json", "", false, t.body)
		f.Add(k, "PUT", "application/json", "fieldValidation=Strict", true, t.body)
		f.Add(k, "PATCH", "application/merge-patch+json", "dryRun=All", true, `{"metadata":{"labels":{"x":"y"}}}`)
		f.Add(k, "PATCH", "application/strategic-merge-patch+json", "", true, `{"metadata":{"labels":{"$patch":"replace"}}}`)
		f.Add(k, "PATCH", "application/json-patch+json", "", true, `[{"op":"move","from":"/metadata","path":"/spec"}]`)
		f.Add(k, "GET", "", "labelSelector=a%20in%20(b,c),!x&fieldSelector=metadata.name%3Dp&limit=1", false, "")
		f.Add(k, "GET", "", "limit=1&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiJwIn0", false, "")
		f.Add(k, "GET", "", "resourceVersion=1&resourceVersionMatch=Exact", false, "")
		f.Add(k, "GET", "", "watch=true&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1", false, "")
		f.Add(k, "DELETE", "application/json", "propagationPolicy=Foreground", true, `{"preconditions":{"uid":"u"}}`)
		f.Add(k, "DELETE", "", "labelSelector=a%3Db&gracePeriodSeconds=0", false, "")
	}
	f.Add(uint8(0), "POST", "application/yaml", "", false, "apiVersion: v1\nkind: Pod\nmetadata: {name: y, generateName: y-}\nspec: {containers: [{name: c, image: i}]}\n")
	f.Add(uint8(1), "GET", "application/json", "fieldSelector=metadata.name%21%3D&labelSelector=%21%21", true, "")
	s := apiservertest.Start(f, nil)
	h := s.API.Handler()
	for _, t := range fuzzTargets {
		if r := do(f, h, "POST", t.collection, "application/json", t.body); r.code != http.StatusCreated {
			f.Fatalf("creating %s/%s: %d %s", t.collection, t.object, r.code, r.body)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, method, ct, query string, named bool, body string) {
		target := fuzzTargets[int(kind)%len(fuzzTargets)]
		switch method {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			method = "GET"
		}
		path := target.collection
		if named {
			path += "/" + target.object
		}
		// Watches end with the request's context.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, method, "http://x"+path, strings.NewReader(body))
		req.URL.RawQuery = query
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusGatewayTimeout {
			t.Fatalf("%d for %s %s?%s (%q) %q: %s", rec.Code, method, path, query, ct, body, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var st metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != rec.Code {
				t.Fatalf("%d for %s %s?%s without a matching Status (%v): %s", rec.Code, method, path, query, err, rec.Body.Bytes())
			}
		}
	})
}
