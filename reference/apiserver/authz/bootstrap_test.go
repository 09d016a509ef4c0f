package authz

import (
	"context"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// TestBootstrapPolicy checks that each reference component's identity, as
// its client certificate carries it (plus system:authenticated, which
// authentication adds), may do what the component needs and no more.
func TestBootstrapPolicy(t *testing.T) {
	authd := user.AllAuthenticated
	sched := usr(user.KubeScheduler, authd)
	cm := usr(user.KubeControllerManager, authd)
	node := usr("system:node:n1", user.NodesGroup, authd)
	proxy := usr(user.KubeProxy, authd)
	admin := usr("kubernetes-admin", user.SystemPrivilegedGroup, authd)
	jane := usr("jane", authd)
	anon := usr(user.Anonymous, user.AllUnauthenticated)

	for _, tc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
		allow bool
	}{
		// scheduler
		{"scheduler lists nodes", req(sched, "list", "", "", "nodes", ""), true},
		{"scheduler watches pods", req(sched, "watch", "", "", "pods", ""), true},
		{"scheduler binds pods", req(sched, "create", "", "default", "pods/binding", "p"), true},
		{"scheduler creates legacy bindings", req(sched, "create", "", "default", "bindings", ""), true},
		{"scheduler updates pod status", req(sched, "update", "", "default", "pods/status", "p"), true},
		{"scheduler patches pod status", req(sched, "patch", "", "default", "pods/status", "p"), true},
		{"scheduler preempts (deletes) pods", req(sched, "delete", "", "default", "pods", "p"), true},
		{"scheduler records events", req(sched, "create", "events.k8s.io", "default", "events", ""), true},
		{"scheduler creates its lease", req(sched, "create", "coordination.k8s.io", "kube-system", "leases", ""), true},
		{"scheduler renews its lease", req(sched, "update", "coordination.k8s.io", "kube-system", "leases", "kube-scheduler"), true},
		{"scheduler may not take another lease", req(sched, "update", "coordination.k8s.io", "kube-system", "leases", "kube-controller-manager"), false},
		{"scheduler lists csinodes", req(sched, "list", "storage.k8s.io", "", "csinodes", ""), true},
		{"scheduler watches resource claims", req(sched, "watch", "resource.k8s.io", "", "resourceclaims", ""), true},
		{"scheduler lists pdbs", req(sched, "list", "policy", "", "poddisruptionbudgets", ""), true},
		{"scheduler reads the authentication configmap", req(sched, "get", "", "kube-system", "configmaps", "extension-apiserver-authentication"), true},
		{"scheduler may not read other configmaps", req(sched, "get", "", "kube-system", "configmaps", "other"), false},
		{"scheduler may not delete secrets", req(sched, "delete", "", "default", "secrets", "s"), false},
		{"scheduler may not read secrets", req(sched, "get", "", "default", "secrets", "s"), false},
		{"scheduler may not create pods", req(sched, "create", "", "default", "pods", ""), false},
		{"scheduler may not update nodes", req(sched, "update", "", "", "nodes", "n1"), false},
		{"scheduler reads discovery", pathReq(sched, "get", "/apis/apps/v1"), true},
		// controller manager
		{"controller manager creates pods", req(cm, "create", "", "default", "pods", ""), true},
		{"controller manager deletes pods", req(cm, "delete", "", "default", "pods", "p"), true},
		{"controller manager creates replicasets", req(cm, "create", "apps", "default", "replicasets", ""), true},
		{"controller manager updates deployment status", req(cm, "update", "apps", "default", "deployments/status", "d"), true},
		{"controller manager writes endpoint slices", req(cm, "update", "discovery.k8s.io", "default", "endpointslices", "e"), true},
		{"controller manager updates node status", req(cm, "patch", "", "", "nodes/status", "n1"), true},
		{"controller manager may not update namespaces", req(cm, "update", "", "ns1", "namespaces", "ns1"), false},
		{"controller manager finalize subresource", req(cm, "update", "", "ns1", "namespaces/finalize", "ns1"), true},
		{"controller manager lists anything", req(cm, "list", "example.com", "", "widgets", ""), true},
		{"controller manager garbage-collects anything", req(cm, "delete", "example.com", "x", "widgets", "w"), true},
		{"controller manager renews its lease", req(cm, "update", "coordination.k8s.io", "kube-system", "leases", "kube-controller-manager"), true},
		{"controller manager may not create cluster role bindings", req(cm, "create", "rbac.authorization.k8s.io", "", "clusterrolebindings", ""), false},
		{"controller manager may not update cluster roles", req(cm, "update", "rbac.authorization.k8s.io", "", "clusterroles", "admin"), false},
		// node
		{"node creates its node", req(node, "create", "", "", "nodes", ""), true},
		{"node updates node status", req(node, "update", "", "", "nodes/status", "n1"), true},
		{"node patches pod status", req(node, "patch", "", "default", "pods/status", "p"), true},
		{"node watches pods", req(node, "watch", "", "", "pods", ""), true},
		{"node renews its lease", req(node, "update", "coordination.k8s.io", "kube-node-lease", "leases", "n1"), true},
		{"node may not bind pods", req(node, "create", "", "default", "pods/binding", "p"), false},
		{"node may not delete nodes", req(node, "delete", "", "", "nodes", "n2"), false},
		{"node may not create deployments", req(node, "create", "apps", "default", "deployments", ""), false},
		// proxy
		{"proxy watches services", req(proxy, "watch", "", "", "services", ""), true},
		{"proxy lists endpoint slices", req(proxy, "list", "discovery.k8s.io", "", "endpointslices", ""), true},
		{"proxy gets nodes", req(proxy, "get", "", "", "nodes", "n1"), true},
		{"proxy may not update services", req(proxy, "update", "", "default", "services", "s"), false},
		{"proxy may not read secrets", req(proxy, "list", "", "", "secrets", ""), false},
		// admin and everyone
		{"admin deletes anything", req(admin, "delete", "", "kube-system", "secrets", "s"), true},
		{"admin reads metrics", pathReq(admin, "get", "/metrics"), true},
		{"authenticated user reads discovery", pathReq(jane, "get", "/api"), true},
		{"authenticated user reads openapi", pathReq(jane, "get", "/openapi/v3/api/v1"), true},
		{"authenticated user asks can-i", req(jane, "create", "authorization.k8s.io", "", "selfsubjectaccessreviews", ""), true},
		{"authenticated user may not list pods", req(jane, "list", "", "default", "pods", ""), false},
		{"authenticated user may not read metrics", pathReq(jane, "get", "/metrics"), false},
		{"service account reads the issuer's keys", pathReq(usr("system:serviceaccount:x:y", "system:serviceaccounts", authd), "get", "/openid/v1/jwks"), true},
		{"plain user may not read the issuer's keys", pathReq(jane, "get", "/openid/v1/jwks"), false},
		{"anonymous reads healthz", pathReq(anon, "get", "/healthz"), true},
		{"anonymous reads version", pathReq(anon, "get", "/version"), true},
		{"anonymous may not read discovery", pathReq(anon, "get", "/api"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, err := New(BootstrapPolicy()).Authorize(context.Background(), tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if got := d == authorizer.DecisionAllow; got != tc.allow {
				t.Errorf("allowed = %v, want %v (%s)", got, tc.allow, reason)
			}
		})
	}
}

// TestBootstrapNamespaceRoles binds admin, edit and view in one namespace
// and checks what separates them.
func TestBootstrapNamespaceRoles(t *testing.T) {
	p := BootstrapPolicy()
	p.RoleBindings = append(p.RoleBindings,
		binding("team", "a", "ClusterRole", AdminRole, userSubj("ann")),
		binding("team", "e", "ClusterRole", EditRole, userSubj("ed")),
		binding("team", "v", "ClusterRole", ViewRole, userSubj("vi")),
	)
	az := New(p)
	ann, ed, vi := usr("ann"), usr("ed"), usr("vi")
	for _, tc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
		allow bool
	}{
		{"view lists pods", req(vi, "list", "", "team", "pods", ""), true},
		{"view reads deployment scale", req(vi, "get", "apps", "team", "deployments/scale", "d"), true},
		{"view may not read secrets", req(vi, "get", "", "team", "secrets", "s"), false},
		{"view may not create pods", req(vi, "create", "", "team", "pods", ""), false},
		{"edit reads secrets", req(ed, "get", "", "team", "secrets", "s"), true},
		{"edit scales deployments", req(ed, "update", "apps", "team", "deployments/scale", "d"), true},
		{"edit execs into pods", req(ed, "create", "", "team", "pods/exec", "p"), true},
		{"edit may not write roles", req(ed, "create", "rbac.authorization.k8s.io", "team", "roles", ""), false},
		{"admin writes role bindings", req(ann, "create", "rbac.authorization.k8s.io", "team", "rolebindings", ""), true},
		{"admin deletes jobs", req(ann, "delete", "batch", "team", "jobs", "j"), true},
		{"admin only in its namespace", req(ann, "list", "", "other", "pods", ""), false},
		{"admin may not touch nodes", req(ann, "get", "", "", "nodes", "n1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, _ := az.Authorize(context.Background(), tc.attrs)
			if got := d == authorizer.DecisionAllow; got != tc.allow {
				t.Errorf("allowed = %v, want %v (%s)", got, tc.allow, reason)
			}
		})
	}
}

func TestBootstrapObjectsAreMarked(t *testing.T) {
	p := BootstrapPolicy()
	check := func(kind, name string, labels, annotations map[string]string) {
		if labels[BootstrapLabel] != "rbac-defaults" || annotations[AutoupdateAnnotation] != "true" {
			t.Errorf("%s %q lacks the bootstrap label or annotation", kind, name)
		}
	}
	for _, r := range p.ClusterRoles {
		check("ClusterRole", r.Name, r.Labels, r.Annotations)
	}
	for _, b := range p.ClusterRoleBindings {
		check("ClusterRoleBinding", b.Name, b.Labels, b.Annotations)
		if _, err := p.GetClusterRole(b.RoleRef.Name); err != nil {
			t.Errorf("ClusterRoleBinding %q: %v", b.Name, err)
		}
	}
	for _, r := range p.Roles {
		check("Role", r.Name, r.Labels, r.Annotations)
	}
	for _, b := range p.RoleBindings {
		check("RoleBinding", b.Name, b.Labels, b.Annotations)
		if _, err := p.GetRole(b.Namespace, b.RoleRef.Name); err != nil {
			t.Errorf("RoleBinding %q: %v", b.Name, err)
		}
	}
	objs := p.Objects()
	if want := len(p.ClusterRoles) + len(p.ClusterRoleBindings) + len(p.Roles) + len(p.RoleBindings); len(objs) != want {
		t.Errorf("Objects() returned %d, want %d", len(objs), want)
	}
	for _, o := range objs {
		if gvk := o.GetObjectKind().GroupVersionKind(); gvk.Group != "rbac.authorization.k8s.io" || gvk.Version != "v1" || gvk.Kind == "" {
			t.Errorf("object without TypeMeta: %v", gvk)
		}
	}
	// Fresh objects on every call: changing one policy leaves the next intact.
	p.ClusterRoles[0].Rules = nil
	if len(BootstrapPolicy().ClusterRoles[0].Rules) == 0 {
		t.Error("BootstrapPolicy shares objects between calls")
	}
}

// BenchmarkAuthorize measures one decision over the bootstrap policy: an
// allowed scheduler request and a denied one (which visits every rule).
func BenchmarkAuthorize(b *testing.B) {
	az := New(BootstrapPolicy())
	sched := usr(user.KubeScheduler, user.AllAuthenticated)
	for _, bc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
	}{
		{"allowed", req(sched, "update", "", "default", "pods/status", "p")},
		{"denied", req(sched, "delete", "", "default", "secrets", "s")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				az.Authorize(ctx, bc.attrs)
			}
		})
	}
}
