package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// attrsRecorder records the attributes the registry admits writes with.
type attrsRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (*attrsRecorder) Name() string { return "AttrsRecorder" }

func (r *attrsRecorder) Validate(_ context.Context, a *admission.Attributes) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%s %s/%s %s %s/%s dry=%v", a.Operation, a.Resource.Resource, a.Subresource, a.Kind.Kind, a.Namespace, a.Name, a.DryRun))
	return nil
}

// TestAdmissionAttributes: the registry builds the attributes of every
// write itself — a PUT that creates is a CREATE, as upstream; a dry run says
// so, whether the request's parameter or an Eviction's deleteOptions asks
// for it.
func TestAdmissionAttributes(t *testing.T) {
	rec := &attrsRecorder{}
	s := apiservertest.Start(t, func(c *apiserver.Config) { c.Admission = []admission.Plugin{rec} })
	h := s.API.Handler()
	steps := []struct{ method, path, body string }{
		{"PUT", "/api/v1/namespaces/default/endpoints/e", `{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"e"}}`},
		{"PUT", "/api/v1/namespaces/default/endpoints/e?dryRun=All", `{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"e","labels":{"k":"v"}}}`},
		{"POST", "/api/v1/namespaces/default/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`},
		{"POST", "/api/v1/namespaces/default/pods/p/eviction", `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p"},"deleteOptions":{"dryRun":["All"]}}`},
		{"POST", "/api/v1/namespaces/default/pods/p/eviction?dryRun=All", `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p"}}`},
		{"DELETE", "/api/v1/namespaces/default/endpoints/e?dryRun=All", ""},
		{"POST", "/apis/apps/v1/namespaces/default/deployments", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`},
		{"PUT", "/apis/apps/v1/namespaces/default/deployments/d/scale", `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d","namespace":"default"},"spec":{"replicas":3}}`},
	}
	for _, st := range steps {
		if r := do(t, h, st.method, st.path, "application/json", st.body); r.code >= 300 {
			t.Fatalf("%s %s: %d %s", st.method, st.path, r.code, r.body)
		}
	}
	want := []string{
		"CREATE endpoints/ Endpoints default/e dry=false",
		"UPDATE endpoints/ Endpoints default/e dry=true",
		"CREATE pods/ Pod default/p dry=false",
		"CREATE pods/eviction Eviction default/p dry=true",
		"CREATE pods/eviction Eviction default/p dry=true",
		"DELETE endpoints/ Endpoints default/e dry=true",
		"CREATE deployments/ Deployment default/d dry=false",
		"UPDATE deployments/scale Deployment default/d dry=false",
	}
	if got := strings.Join(rec.calls, "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("admitted:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
