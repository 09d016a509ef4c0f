package openapi_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/kubelab/kubelab/reference/apiserver/openapi"
	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

func builtinKinds() []openapi.Kind {
	var kinds []openapi.Kind
	for _, r := range registry.Builtin() {
		kinds = append(kinds, openapi.KindOf(r.GroupVersionKind(), r.New()))
		kinds = append(kinds, openapi.KindOf(r.GroupVersion().WithKind(r.Kind+"List"), r.NewList()))
	}
	return kinds
}

func TestNames(t *testing.T) {
	for typ, want := range map[reflect.Type]string{
		reflect.TypeOf(corev1.Pod{}):          "io.k8s.api.core.v1.Pod",
		reflect.TypeOf(&appsv1.Deployment{}):  "io.k8s.api.apps.v1.Deployment",
		reflect.TypeOf(metav1.ObjectMeta{}):   "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
		reflect.TypeOf(metav1.Time{}):         "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
		reflect.TypeOf(corev1.ResourceList{}): "io.k8s.api.core.v1.ResourceList",
	} {
		if got := openapi.Name(typ); got != want {
			t.Errorf("Name(%v) = %q, want %q", typ, got, want)
		}
	}
}

func TestGenerateV3(t *testing.T) {
	defs := openapi.Generate(builtinKinds(), openapi.V3)
	pod := defs["io.k8s.api.core.v1.Pod"]
	if pod == nil {
		t.Fatal("no io.k8s.api.core.v1.Pod")
	}
	if !strings.Contains(pod.Description, "collection of containers") {
		t.Errorf("Pod description %q", pod.Description)
	}
	gvk, _ := json.Marshal(pod.Extensions["x-kubernetes-group-version-kind"])
	if string(gvk) != `[{"group":"","kind":"Pod","version":"v1"}]` {
		t.Errorf("Pod gvk %s", gvk)
	}
	meta := pod.Properties["metadata"]
	if len(meta.AllOf) != 1 || meta.AllOf[0].Ref.String() != "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" || meta.Description == "" {
		t.Errorf("Pod.metadata = %+v", meta)
	}

	podSpec := defs["io.k8s.api.core.v1.PodSpec"]
	containers := podSpec.Properties["containers"]
	if !contains(podSpec.Required, "containers") || contains(podSpec.Required, "volumes") {
		t.Errorf("PodSpec required = %v", podSpec.Required)
	}
	wantExt(t, "PodSpec.containers", containers, map[string]string{
		"x-kubernetes-list-type": `"map"`, "x-kubernetes-list-map-keys": `["name"]`,
		"x-kubernetes-patch-strategy": `"merge"`, "x-kubernetes-patch-merge-key": `"name"`,
	})
	if containers.Items.Schema.Ref.String() != "#/components/schemas/io.k8s.api.core.v1.Container" {
		t.Errorf("containers items %+v", containers.Items.Schema)
	}
	c := defs["io.k8s.api.core.v1.Container"]
	wantExt(t, "Container.ports", c.Properties["ports"], map[string]string{"x-kubernetes-list-map-keys": `["containerPort","protocol"]`})
	wantExt(t, "Container.env", c.Properties["env"], map[string]string{"x-kubernetes-list-map-keys": `["name"]`})
	if d := defs["io.k8s.api.core.v1.ContainerPort"].Properties["protocol"].Default; d != "TCP" {
		t.Errorf("ContainerPort.protocol default %v", d)
	}
	wantExt(t, "ObjectMeta.finalizers", defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].Properties["finalizers"], map[string]string{"x-kubernetes-list-type": `"set"`})
	wantExt(t, "PodCondition list", defs["io.k8s.api.core.v1.PodStatus"].Properties["conditions"], map[string]string{"x-kubernetes-list-map-keys": `["type"]`})
	if mt := defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"].Extensions["x-kubernetes-map-type"]; mt != "atomic" {
		t.Errorf("LabelSelector map type %v", mt)
	}

	limits := defs["io.k8s.api.core.v1.ResourceRequirements"].Properties["limits"]
	if !limits.Type.Contains("object") || limits.AdditionalProperties.Schema.Ref.String() != "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity" || limits.Description == "" {
		t.Errorf("ResourceRequirements.limits = %+v", limits)
	}
	q := defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]
	if len(q.OneOf) != 2 || q.Description == "" {
		t.Errorf("Quantity = %+v", q)
	}
	if ts := defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]; !ts.Type.Contains("string") || ts.Format != "date-time" {
		t.Errorf("Time = %+v", ts)
	}
	if is := defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]; is.Format != "int-or-string" || len(is.OneOf) != 2 {
		t.Errorf("IntOrString = %+v", is)
	}
	replicas := defs["io.k8s.api.apps.v1.DeploymentSpec"].Properties["replicas"]
	if !replicas.Type.Contains("integer") || replicas.Format != "int32" || !strings.Contains(replicas.Description, "desired pods") {
		t.Errorf("DeploymentSpec.replicas = %+v", replicas)
	}
	// Every reference resolves.
	for name, s := range defs {
		for _, n := range defs.Closure(name) {
			if defs[n] == nil {
				t.Errorf("%s refers to missing %s", name, n)
			}
		}
		_ = s
	}
	if got := defs.Closure("io.k8s.api.core.v1.Pod"); !contains(got, "io.k8s.api.core.v1.Container") || contains(got, "io.k8s.api.apps.v1.Deployment") {
		t.Errorf("closure of Pod: %v", got)
	}
}

func TestGenerateV2(t *testing.T) {
	defs := openapi.Generate(builtinKinds(), openapi.V2)
	meta := defs["io.k8s.api.apps.v1.Deployment"].Properties["metadata"]
	if meta.Ref.String() != "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" || meta.Description == "" || len(meta.AllOf) != 0 {
		t.Errorf("v2 Deployment.metadata = %+v", meta)
	}
	if q := defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]; !q.Type.Contains("string") {
		t.Errorf("v2 Quantity = %+v", q)
	}
}

// TestTypeConverter: the schemas are structural enough for server-side
// apply: every built-in kind converts, and an object round-trips.
func TestTypeConverter(t *testing.T) {
	tc, err := managedfields.NewTypeConverter(openapi.Generate(builtinKinds(), openapi.V3), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range registry.Builtin() {
		obj := r.New()
		obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
		if _, err := tc.ObjectToTyped(obj); err != nil {
			t.Errorf("%s: %v", r.GroupVersionKind(), err)
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox",
			"ports": []any{map[string]any{"containerPort": int64(80)}}}}},
	}}
	if _, err := tc.ObjectToTyped(u); err != nil {
		t.Errorf("pod: %v", err)
	}
	u.Object["spec"].(map[string]any)["bogus"] = "x"
	if _, err := tc.ObjectToTyped(u); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: err = %v", err)
	}
}

func wantExt(t *testing.T, what string, s spec.Schema, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(s.Extensions[k])
		if string(got) != v {
			t.Errorf("%s %s = %s, want %s", what, k, got, v)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BenchmarkGenerate generates the v3 definitions of every built-in kind.
func BenchmarkGenerate(b *testing.B) {
	kinds := builtinKinds()
	for i := 0; i < b.N; i++ {
		openapi.Generate(kinds, openapi.V3)
	}
}
