package apiserver_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// managers returns "manager/operation[/subresource]" of obj's managedFields.
func managers(m metav1.Object) []string {
	var out []string
	for _, e := range m.GetManagedFields() {
		s := e.Manager + "/" + string(e.Operation)
		if e.Subresource != "" {
			s += "/" + e.Subresource
		}
		out = append(out, s)
	}
	return out
}

func hasManager(m metav1.Object, want string) bool {
	for _, s := range managers(m) {
		if s == want {
			return true
		}
	}
	return false
}

// ownedBy returns the FieldsV1 JSON of manager's entry.
func ownedBy(m metav1.Object, manager string) string {
	for _, e := range m.GetManagedFields() {
		if e.Manager == manager && e.FieldsV1 != nil {
			return string(e.FieldsV1.Raw)
		}
	}
	return ""
}

// TestManagedFieldsOnWrites: create, update, patch and status updates
// record Update entries of their manager (fieldManager or the user agent).
func TestManagedFieldsOnWrites(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	deps := s.Client.AppsV1().Deployments("default")
	d, err := deps.Create(ctx, deployment("web", 1), metav1.CreateOptions{FieldManager: "creator"})
	if err != nil {
		t.Fatal(err)
	}
	if !hasManager(d, "creator/Update") || !strings.Contains(ownedBy(d, "creator"), `"f:replicas":{}`) {
		t.Fatalf("after create: managers %v, owned %s", managers(d), ownedBy(d, "creator"))
	}
	if d.ManagedFields[0].APIVersion != "apps/v1" || d.ManagedFields[0].FieldsType != "FieldsV1" || d.ManagedFields[0].Time == nil {
		t.Fatalf("entry %+v", d.ManagedFields[0])
	}
	// No fieldManager: the user agent's prefix.
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ua := strings.SplitN(s.Config.UserAgent, "/", 2)[0]
	if ua == "" {
		ua = strings.SplitN(defaultUserAgent(), "/", 2)[0]
	}
	if !hasManager(d, ua+"/Update") || !strings.Contains(ownedBy(d, ua), `"f:image":{}`) || strings.Contains(ownedBy(d, "creator"), `"f:image"`) {
		t.Fatalf("after update: managers %v; %s owns %s; creator owns %s", managers(d), ua, ownedBy(d, ua), ownedBy(d, "creator"))
	}
	d, err = deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{FieldManager: "scaler"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ownedBy(d, "scaler"), `"f:replicas":{}`) || strings.Contains(ownedBy(d, "creator"), `"f:replicas"`) {
		t.Fatalf("after patch: scaler owns %s, creator owns %s", ownedBy(d, "scaler"), ownedBy(d, "creator"))
	}
	d.Status.ObservedGeneration = d.Generation
	d, err = deps.UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: "controller"})
	if err != nil {
		t.Fatal(err)
	}
	if !hasManager(d, "controller/Update/status") || !strings.Contains(ownedBy(d, "controller"), `"f:observedGeneration"`) {
		t.Fatalf("after status update: %v, controller owns %s", managers(d), ownedBy(d, "controller"))
	}
	// An over-long or unprintable fieldManager is 422, as upstream.
	_, err = deps.Patch(ctx, "web", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{FieldManager: strings.Repeat("x", 129)})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "fieldManager: Too long") {
		t.Fatalf("long fieldManager: %v", err)
	}
	_, err = deps.Create(ctx, deployment("web2", 1), metav1.CreateOptions{FieldManager: "a\x01b"})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "invalid character") {
		t.Fatalf("unprintable fieldManager: %v", err)
	}
}

func defaultUserAgent() string { return "apiserver.test" }

// TestServerSideApplyClientGo: typed Apply creates, updates, conflicts
// (409 with upstream's message and causes), force takes over, fields no
// longer applied are removed, and managedFields are readable by
// applyconfigurations' Extract.
func TestServerSideApplyClientGo(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	deps := s.Client.AppsV1().Deployments("default")
	cfg := func(replicas int32, labels map[string]string) *appsv1ac.DeploymentApplyConfiguration {
		sel := map[string]string{"app": "api"}
		return appsv1ac.Deployment("api", "default").WithLabels(labels).WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(sel)).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(sel).WithSpec(corev1ac.PodSpec().
				WithContainers(corev1ac.Container().WithName("c").WithImage("nginx:1.27").
					WithPorts(corev1ac.ContainerPort().WithContainerPort(80))))))
	}
	d, err := deps.Apply(ctx, cfg(2, map[string]string{"team": "a", "tier": "web"}), metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("apply (create): %v", err)
	}
	if *d.Spec.Replicas != 2 || d.Labels["tier"] != "web" || !hasManager(d, "alice/Apply") {
		t.Fatalf("created: replicas %d labels %v managers %v", *d.Spec.Replicas, d.Labels, managers(d))
	}
	// Defaults were applied to the created object, and the port's key
	// default (protocol TCP) did not upset the merge.
	if d.Spec.Template.Spec.Containers[0].Ports[0].Protocol != corev1.ProtocolTCP || d.Spec.Strategy.Type == "" {
		t.Fatalf("defaults: %+v", d.Spec)
	}

	// Another manager changing alice's field conflicts.
	_, err = deps.Apply(ctx, cfg(5, map[string]string{"team": "a", "tier": "web"}), metav1.ApplyOptions{FieldManager: "bob"})
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != http.StatusConflict || se.ErrStatus.Reason != metav1.StatusReasonConflict {
		t.Fatalf("conflicting apply: want 409 Conflict, got %v", err)
	}
	if want := `Apply failed with 1 conflict: conflict with "alice": .spec.replicas`; se.ErrStatus.Message != want {
		t.Fatalf("conflict message %q, want %q", se.ErrStatus.Message, want)
	}
	if c := se.ErrStatus.Details.Causes; len(c) != 1 || c[0].Type != metav1.CauseTypeFieldManagerConflict || c[0].Field != ".spec.replicas" {
		t.Fatalf("conflict causes %+v", c)
	}
	// Applying the same value is not a conflict: both own it.
	d, err = deps.Apply(ctx, appsv1ac.Deployment("api", "default").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(2)), metav1.ApplyOptions{FieldManager: "bob"})
	if err != nil {
		t.Fatalf("agreeing apply: %v", err)
	}
	if !strings.Contains(ownedBy(d, "bob"), "f:replicas") || !strings.Contains(ownedBy(d, "alice"), "f:replicas") {
		t.Fatalf("shared ownership: alice %s bob %s", ownedBy(d, "alice"), ownedBy(d, "bob"))
	}
	// Force takes the field over.
	d, err = deps.Apply(ctx, appsv1ac.Deployment("api", "default").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(7)), metav1.ApplyOptions{FieldManager: "bob", Force: true})
	if err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	if *d.Spec.Replicas != 7 || strings.Contains(ownedBy(d, "alice"), "f:replicas") {
		t.Fatalf("after force: replicas %d, alice owns %s", *d.Spec.Replicas, ownedBy(d, "alice"))
	}
	// alice stops applying the tier label and replicas: the label goes
	// (nobody else owns it), replicas stay (bob owns them).
	noReplicas := cfg(0, map[string]string{"team": "a"})
	noReplicas.Spec.Replicas = nil
	d, err = deps.Apply(ctx, noReplicas, metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatalf("apply without tier: %v", err)
	}
	if _, ok := d.Labels["tier"]; ok || d.Labels["team"] != "a" || *d.Spec.Replicas != 7 {
		t.Fatalf("after removing fields: labels %v replicas %d", d.Labels, *d.Spec.Replicas)
	}
	// Extract reads alice's configuration back from managedFields.
	ex, err := appsv1ac.ExtractDeployment(d, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ex.Labels["team"] != "a" || ex.Spec == nil || ex.Spec.Replicas != nil || len(ex.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("extracted %+v", ex)
	}

	// /scale writes are tracked on the parent with subresource scale, and
	// take replicas over from bob.
	sc, err := deps.GetScale(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 9
	if _, err := deps.UpdateScale(ctx, "api", sc, metav1.UpdateOptions{FieldManager: "hpa"}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	if d, err = deps.Get(ctx, "api", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 9 || !hasManager(d, "hpa/Update/scale") || !strings.Contains(ownedBy(d, "hpa"), `"f:replicas"`) || strings.Contains(ownedBy(d, "bob"), "f:replicas") {
		t.Fatalf("after scale: replicas %d managers %v hpa %s bob %s", *d.Spec.Replicas, managers(d), ownedBy(d, "hpa"), ownedBy(d, "bob"))
	}
	// An apply to replicas now conflicts with the scale writer.
	_, err = deps.Apply(ctx, appsv1ac.Deployment("api", "default").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(1)), metav1.ApplyOptions{FieldManager: "bob"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "hpa" with subresource "scale"`) {
		t.Fatalf("apply over a scale writer: %v", err)
	}
	// Server-side apply to /scale.
	_, err = s.Client.AppsV1().RESTClient().Patch(types.ApplyPatchType).Namespace("default").Resource("deployments").Name("api").SubResource("scale").
		Param("fieldManager", "autoscaler").Param("force", "true").
		Body([]byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"api"},"spec":{"replicas":4}}`)).Do(ctx).Get()
	if err != nil {
		t.Fatalf("apply to scale: %v", err)
	}
	if d, err = deps.Get(ctx, "api", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 4 || !hasManager(d, "autoscaler/Apply/scale") {
		t.Fatalf("after apply to scale: %v %v", err, managers(d))
	}

	// Status apply is tracked as the status subresource.
	st, err := deps.ApplyStatus(ctx, appsv1ac.Deployment("api", "default").WithStatus(appsv1ac.DeploymentStatus().WithObservedGeneration(1)), metav1.ApplyOptions{FieldManager: "ctrl", Force: true})
	if err != nil {
		t.Fatalf("apply status: %v", err)
	}
	if st.Status.ObservedGeneration != 1 || !hasManager(st, "ctrl/Apply/status") {
		t.Fatalf("status apply: %+v %v", st.Status, managers(st))
	}

	// An unknown field is a 400 naming it; a dry run changes nothing.
	_, err = s.Client.AppsV1().RESTClient().Patch(types.ApplyPatchType).Namespace("default").Resource("deployments").Name("api").
		Param("fieldManager", "alice").Body([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},"spec":{"bogus":1}}`)).Do(ctx).Get()
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), ".spec.bogus: field not declared in schema") {
		t.Fatalf("unknown field: %v", err)
	}
	dry := cfg(1, nil)
	dry.Name = ptr.To("dry")
	if _, err := deps.Apply(ctx, dry, metav1.ApplyOptions{FieldManager: "alice", DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run apply: %v", err)
	} else if _, err := deps.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run apply created the object: %v", err)
	}

	// fieldManager is required for apply, force only allowed with it.
	_, err = s.Client.AppsV1().RESTClient().Patch(types.ApplyPatchType).Namespace("default").Resource("deployments").Name("api").
		Body([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"}}`)).Do(ctx).Get()
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "fieldManager: Required value: is required for apply patch") {
		t.Fatalf("apply without fieldManager: %v", err)
	}
	_, err = s.Client.AppsV1().RESTClient().Patch(types.MergePatchType).Namespace("default").Resource("deployments").Name("api").
		Param("force", "true").Body([]byte(`{}`)).Do(ctx).Get()
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "force: Forbidden: may not be specified for non-apply patch") {
		t.Fatalf("merge patch with force: %v", err)
	}
	// A configuration for another kind or version is refused.
	_, err = s.Client.AppsV1().RESTClient().Patch(types.ApplyPatchType).Namespace("default").Resource("deployments").Name("api").
		Param("fieldManager", "alice").Body([]byte(`{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"api"}}`)).Do(ctx).Get()
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("apply of another version: %v", err)
	}
}

const ssaManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa
  labels:
    app: ssa
    tier: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: ssa
  template:
    metadata:
      labels:
        app: ssa
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
`

// TestKubectlServerSideApply: kubectl apply --server-side, conflicts
// between field managers, --force-conflicts, removal of fields no longer
// applied, --show-managed-fields, and the upgrade from client-side apply.
func TestKubectlServerSideApply(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	k := newKubectl(t, s)
	write := func(name, content string) string {
		p := filepath.Join(k.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mf := write("ssa.yaml", ssaManifest)
	out := k.run("apply", "--server-side", "-f", mf)
	wantContains(t, "apply --server-side", out, "deployment.apps/ssa serverside-applied")
	out = k.run("get", "deployment", "ssa", "-o", "yaml", "--show-managed-fields")
	wantContains(t, "--show-managed-fields", out, "managedFields:", "manager: kubectl", "operation: Apply", "f:replicas: {}", `k:{"containerPort":80,"protocol":"TCP"}`)
	if out = k.run("get", "deployment", "ssa", "-o", "yaml"); strings.Contains(out, "managedFields") {
		t.Fatalf("managedFields shown without --show-managed-fields:\n%s", out)
	}

	// A partial configuration: other manages only the replicas.
	changed := write("changed.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ssa\nspec:\n  replicas: 4\n")
	_, errOut, err := k.try("apply", "--server-side", "--field-manager", "other", "-f", changed)
	if err == nil {
		t.Fatal("conflicting apply succeeded")
	}
	wantContains(t, "conflict", errOut, `Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas`, "--force-conflicts")
	out = k.run("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", changed)
	out = k.run("scale", "deployment", "ssa", "--replicas=6")
	wantContains(t, "scale", out, "deployment.apps/ssa scaled")
	out = k.run("get", "deployment", "ssa", "-o", "yaml", "--show-managed-fields")
	wantContains(t, "managedFields after scale", out, "subresource: scale")
	out = k.run("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", changed)
	wantContains(t, "--force-conflicts", out, "deployment.apps/ssa serverside-applied")
	if out = k.run("get", "deployment", "ssa", "-o", "jsonpath={.spec.replicas}"); out != "4" {
		t.Fatalf("replicas after forced apply: %q", out)
	}

	// The first manager drops the tier label and replicas from its
	// configuration: the label is removed, replicas (now other's) stay.
	dropped := write("dropped.yaml", strings.Replace(strings.Replace(ssaManifest, "    tier: web\n", "", 1), "  replicas: 2\n", "", 1))
	k.run("apply", "--server-side", "-f", dropped)
	if out = k.run("get", "deployment", "ssa", "-o", "jsonpath={.metadata.labels.tier}/{.spec.replicas}"); out != "/4" {
		t.Fatalf("after dropping fields: tier/replicas = %q", out)
	}

	// Client-side apply, then server-side apply changing a field: the
	// conflict names kubectl-client-side-apply, as upstream.
	csa := write("csa.yaml", strings.ReplaceAll(ssaManifest, "ssa", "csa"))
	k.run("apply", "-f", csa)
	csaChanged := write("csa2.yaml", strings.Replace(strings.ReplaceAll(ssaManifest, "ssa", "csa"), "replicas: 2", "replicas: 3", 1))
	_, errOut, err = k.try("apply", "--server-side", "--field-manager", "ssa-user", "-f", csaChanged)
	if err == nil {
		t.Fatal("apply over client-side apply succeeded")
	}
	wantContains(t, "conflict with client-side apply", errOut, `conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas`)
}

// BenchmarkServerSideApply applies a changing Deployment configuration
// (field manager, type conversion, merge) through client-go.
func BenchmarkServerSideApply(b *testing.B) {
	s := apiservertest.Start(b, nil)
	ctx := context.Background()
	deps := s.Client.AppsV1().Deployments("default")
	sel := map[string]string{"app": "bench"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg := appsv1ac.Deployment("bench", "default").WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(int32(i % 5)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(sel)).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(sel).WithSpec(corev1ac.PodSpec().
				WithContainers(corev1ac.Container().WithName("c").WithImage("nginx:1.27")))))
		if _, err := deps.Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: "bench", Force: true}); err != nil {
			b.Fatal(err)
		}
	}
}
