package apiserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// TestBadInputOnExistingObjects sends malformed updates, patches, deletes
// and list/watch queries about existing objects: each gets upstream's status
// code and metav1.Status reason (every case was checked against
// kube-apiserver v1.37.2), and neither the objects nor the store change.
func TestBadInputOnExistingObjects(t *testing.T) {
	s := apiservertest.Start(t, nil)
	h := s.API.Handler()
	ctx := context.Background()
	const pods = "/api/v1/namespaces/default/pods"
	const cms = "/api/v1/namespaces/default/configmaps"
	mustCreate := func(path, body string) {
		t.Helper()
		if r := do(t, h, "POST", path, "application/json", body); r.code != 201 {
			t.Fatalf("create: %d %s", r.code, r.body)
		}
	}
	mustCreate(pods, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"1"}},"spec":{"containers":[{"name":"c","image":"i"}]}}`)
	mustCreate(cms, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"k":"v"}}`)
	pod, err := s.Client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, "cm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := cm.ResourceVersion
	cmBody := func(name, ns, resourceVersion, value string) string {
		meta := `"name":"` + name + `"`
		if ns != "" {
			meta += `,"namespace":"` + ns + `"`
		}
		if resourceVersion != "" {
			meta += `,"resourceVersion":"` + resourceVersion + `"`
		}
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{` + meta + `},"data":{"k":"` + value + `"}}`
	}
	const merge, jsonPatch, strategic = "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json"
	cases := []struct {
		name, method, path, ct, body string
		code                         int
		reason                       metav1.StatusReason
		msg                          string
	}{
		// Updates.
		{"update malformed JSON", "PUT", cms + "/cm", "application/json", `{"kind":`, 400, metav1.StatusReasonBadRequest, ""},
		{"update empty body", "PUT", cms + "/cm", "application/json", ``, 400, metav1.StatusReasonBadRequest, ""},
		{"update JSON array", "PUT", cms + "/cm", "application/json", `[1,2]`, 400, metav1.StatusReasonBadRequest, ""},
		{"update wrong type", "PUT", cms + "/cm", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":7}}`, 400, metav1.StatusReasonBadRequest, ""},
		{"update wrong kind", "PUT", cms + "/cm", "application/json", strings.Replace(cmBody("cm", "", rv, "x"), `"ConfigMap"`, `"Secret"`, 1), 400, metav1.StatusReasonBadRequest, "kind"},
		{"update wrong apiVersion", "PUT", cms + "/cm", "application/json", strings.Replace(cmBody("cm", "", rv, "x"), `"v1"`, `"apps/v1"`, 1), 400, metav1.StatusReasonBadRequest, ""},
		{"update other name", "PUT", cms + "/cm", "application/json", cmBody("other", "", rv, "x"), 400, metav1.StatusReasonBadRequest, "does not match the name on the URL"},
		{"update other namespace", "PUT", cms + "/cm", "application/json", cmBody("cm", "kube-system", rv, "x"), 400, metav1.StatusReasonBadRequest, "does not match the namespace"},
		{"update stale resourceVersion", "PUT", cms + "/cm", "application/json", cmBody("cm", "", "1", "x"), 409, metav1.StatusReasonConflict, "the object has been modified"},
		{"update unknown field strict", "PUT", cms + "/cm?fieldValidation=Strict", "application/json", strings.Replace(cmBody("cm", "", rv, "x"), `"data"`, `"bogus":1,"data"`, 1), 400, metav1.StatusReasonBadRequest, `unknown field "bogus"`},
		{"update missing object", "PUT", cms + "/nope", "application/json", cmBody("nope", "", "", "x"), 404, metav1.StatusReasonNotFound, `configmaps "nope" not found`},
		{"update immutable pod field", "PUT", pods + "/p", "application/json",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","resourceVersion":"` + pod.ResourceVersion + `"},"spec":{"containers":[{"name":"renamed","image":"i"}]}}`,
			422, metav1.StatusReasonInvalid, "spec"},
		{"update unsupported media type", "PUT", cms + "/cm", "text/plain", cmBody("cm", "", rv, "x"), 415, metav1.StatusReasonUnsupportedMediaType, ""},
		// Patches.
		{"merge patch malformed", "PATCH", cms + "/cm", merge, `{"data":`, 400, metav1.StatusReasonBadRequest, ""},
		{"merge patch not an object", "PATCH", cms + "/cm", merge, `"x"`, 400, metav1.StatusReasonBadRequest, ""},
		{"merge patch wrong type", "PATCH", cms + "/cm", merge, `{"data":{"k":5}}`, 422, metav1.StatusReasonInvalid, "patch: Invalid value"},
		{"merge patch wrong kind", "PATCH", cms + "/cm", merge, `{"kind":"Secret"}`, 422, metav1.StatusReasonInvalid, "patch: Invalid value"},
		{"merge patch unknown field strict", "PATCH", cms + "/cm?fieldValidation=Strict", merge, `{"bogus":1}`, 422, metav1.StatusReasonInvalid, `unknown field "bogus"`},
		{"JSON patch wrong type", "PATCH", cms + "/cm", jsonPatch, `[{"op":"replace","path":"/data","value":7}]`, 422, metav1.StatusReasonInvalid, "patch: Invalid value"},
		{"strategic patch wrong type", "PATCH", pods + "/p", strategic, `{"spec":{"activeDeadlineSeconds":"soon"}}`, 422, metav1.StatusReasonInvalid, "patch: Invalid value"},
		{"merge patch renames", "PATCH", cms + "/cm", merge, `{"metadata":{"name":"other"}}`, 400, metav1.StatusReasonBadRequest, "does not match the name on the URL"},
		{"merge patch stale resourceVersion", "PATCH", cms + "/cm", merge, `{"metadata":{"resourceVersion":"1"},"data":{"k":"x"}}`, 409, metav1.StatusReasonConflict, ""},
		{"merge patch invalid label", "PATCH", cms + "/cm", merge, `{"metadata":{"labels":{"bad key!":"x"}}}`, 422, metav1.StatusReasonInvalid, "metadata.labels"},
		{"merge patch missing object", "PATCH", cms + "/nope", merge, `{"data":{"k":"x"}}`, 404, metav1.StatusReasonNotFound, ""},
		{"JSON patch malformed", "PATCH", cms + "/cm", jsonPatch, `[{"op":`, 400, metav1.StatusReasonBadRequest, ""},
		{"JSON patch not a list", "PATCH", cms + "/cm", jsonPatch, `{"op":"add"}`, 400, metav1.StatusReasonBadRequest, ""},
		{"JSON patch missing path", "PATCH", cms + "/cm", jsonPatch, `[{"op":"remove","path":"/data/nope"}]`, 422, metav1.StatusReasonInvalid, ""},
		{"JSON patch failed test", "PATCH", cms + "/cm", jsonPatch, `[{"op":"test","path":"/data/k","value":"other"},{"op":"replace","path":"/data/k","value":"x"}]`, 422, metav1.StatusReasonInvalid, ""},
		{"strategic patch malformed", "PATCH", pods + "/p", strategic, `{"spec":`, 400, metav1.StatusReasonBadRequest, ""},
		// Deletes.
		{"delete malformed options", "DELETE", cms + "/cm", "application/json", `{"propagationPolicy":`, 400, metav1.StatusReasonBadRequest, ""},
		{"delete unknown propagationPolicy", "DELETE", cms + "/cm?propagationPolicy=Sideways", "", "", 422, metav1.StatusReasonInvalid, "propagationPolicy"},
		{"delete uid precondition", "DELETE", cms + "/cm", "application/json", `{"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}`, 409, metav1.StatusReasonConflict, "Precondition failed"},
		{"delete resourceVersion precondition", "DELETE", cms + "/cm", "application/json", `{"preconditions":{"resourceVersion":"1"}}`, 409, metav1.StatusReasonConflict, "Precondition failed"},
		{"delete bad dryRun", "DELETE", cms + "/cm?dryRun=Maybe", "", "", 422, metav1.StatusReasonInvalid, `DeleteOptions.meta.k8s.io "" is invalid: dryRun`},
		{"update bad fieldValidation", "PUT", cms + "/cm?fieldValidation=Loose", "application/json", cmBody("cm", "", rv, "x"), 422, metav1.StatusReasonInvalid, `UpdateOptions.meta.k8s.io "" is invalid: fieldValidation`},
		{"patch bad dryRun", "PATCH", cms + "/cm?dryRun=Maybe", merge, `{"data":{"k":"x"}}`, 422, metav1.StatusReasonInvalid, `PatchOptions.meta.k8s.io "" is invalid: dryRun`},
		{"delete missing object", "DELETE", cms + "/nope", "", "", 404, metav1.StatusReasonNotFound, `configmaps "nope" not found`},
		// Lists and watches.
		{"malformed field selector", "GET", pods + "?fieldSelector=metadata.name", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"bad limit", "GET", cms + "?limit=many", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"bad continue", "GET", cms + "?limit=1&continue=garbage", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"exact at resourceVersion 0", "GET", cms + "?resourceVersion=0&resourceVersionMatch=Exact", "", "", 422, metav1.StatusReasonInvalid, "resourceVersionMatch"},
		{"unknown resourceVersionMatch", "GET", cms + "?resourceVersion=5&resourceVersionMatch=Sometimes", "", "", 422, metav1.StatusReasonInvalid, "resourceVersionMatch"},
		{"bad watch timeout", "GET", cms + "?watch=true&timeoutSeconds=soon", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"watch bad label selector", "GET", cms + "?watch=true&labelSelector=a+in+((", "", "", 400, metav1.StatusReasonBadRequest, ""},
		// A create on an object's path.
		{"create on a named path", "POST", cms + "/cm", "application/json", cmBody("cm", "", "", "x"), 405, metav1.StatusReasonMethodNotAllowed, ""},
		{"unknown subresource", "PUT", pods + "/p/frobnicate", "application/json", `{}`, 404, metav1.StatusReasonNotFound, ""},
	}
	rev0, err := s.Store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, h, c.method, c.path, c.ct, c.body)
			st := status(t, r)
			if r.code != c.code || int(st.Code) != c.code || st.Reason != c.reason || !strings.Contains(st.Message, c.msg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", r.code, st.Reason, st.Message, c.code, c.reason, c.msg)
			}
		})
	}
	if rev, _ := s.Store.Revision(ctx); rev != rev0 {
		t.Fatalf("bad input changed the store: revision %d -> %d", rev0, rev)
	}
	got, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, "cm", metav1.GetOptions{})
	if err != nil || got.ResourceVersion != rv || got.Data["k"] != "v" || len(got.Labels) != 0 {
		t.Fatalf("the configmap changed: %+v %v", got, err)
	}
	gotPod, err := s.Client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil || gotPod.ResourceVersion != pod.ResourceVersion {
		t.Fatalf("the pod changed: %+v %v", gotPod, err)
	}
}

// TestCreateInMissingNamespace: with admission (NamespaceLifecycle), a
// create in a namespace that does not exist is 404 NotFound naming the
// namespace, and stores nothing.
func TestCreateInMissingNamespace(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	rev0, err := s.Store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Client.CoreV1().ConfigMaps("nope").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Code != 404 || st.Status().Reason != metav1.StatusReasonNotFound || !strings.Contains(st.Status().Message, `namespaces "nope" not found`) {
		t.Fatalf("create in a missing namespace: %v", err)
	}
	if rev, _ := s.Store.Revision(ctx); rev != rev0 {
		t.Fatalf("the rejected create changed the store: revision %d -> %d", rev0, rev)
	}
}
