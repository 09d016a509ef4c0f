package authz

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Bootstrap object metadata, as kube-apiserver marks its default policy.
const (
	// BootstrapLabel is set to "rbac-defaults" on every bootstrap object.
	BootstrapLabel = "kubernetes.io/bootstrapping"
	// AutoupdateAnnotation is set to "true" on every bootstrap object:
	// the server may reconcile it on restart.
	AutoupdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
)

// Names of the bootstrap cluster roles.
const (
	// ClusterAdminRole allows everything; bound to system:masters.
	ClusterAdminRole = "cluster-admin"
	// AdminRole is edit plus roles and role bindings, for one namespace.
	AdminRole = "admin"
	// EditRole writes workloads, config and secrets, not RBAC.
	EditRole = "edit"
	// ViewRole reads namespaced objects except secrets.
	ViewRole = "view"
	// DiscoveryRole reads /api, /apis, /openapi, /version and probes.
	DiscoveryRole = "system:discovery"
	// BasicUserRole creates self access and rules reviews.
	BasicUserRole = "system:basic-user"
	// PublicInfoViewerRole reads /healthz, /livez, /readyz and /version.
	PublicInfoViewerRole = "system:public-info-viewer"
	// SchedulerRole is what a scheduler reads and writes.
	SchedulerRole = "system:kube-scheduler"
	// ControllerManagerRole is what the reference controllers need.
	ControllerManagerRole = "system:kube-controller-manager"
	// NodeRole is what a kubelet needs; NodeRestriction narrows writes.
	NodeRole = "system:node"
	// NodeProxierRole is what a service proxy reads; bound to
	// system:kube-proxy (upstream's name for kube-proxy's role).
	NodeProxierRole = "system:node-proxier"
	// IssuerDiscoveryRole reads the service-account issuer's OIDC
	// discovery document and keys; bound to system:serviceaccounts.
	IssuerDiscoveryRole = "system:service-account-issuer-discovery"
	// AuthReaderRole is a Role in kube-system that reads the
	// extension-apiserver-authentication ConfigMap, which the upstream
	// kube-scheduler and controller manager read when they start.
	AuthReaderRole = "extension-apiserver-authentication-reader"
)

// Verb sets.
var (
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"create", "delete", "deletecollection", "patch", "update"}
	eventVerbs = []string{"create", "patch", "update"}
	statusRW   = []string{"patch", "update"}
)

// pr builds a PolicyRule: pr(verbs, groups, resources...).
func pr(verbs []string, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

func prNamed(verbs []string, groups []string, resource string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: []string{resource}, ResourceNames: names}
}

func prURLs(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

func g(groups ...string) []string { return groups }

var core = g("")

func bootstrapMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace:   namespace,
		Name:        name,
		Labels:      map[string]string{BootstrapLabel: "rbac-defaults"},
		Annotations: map[string]string{AutoupdateAnnotation: "true"},
	}
}

// viewRules read everything namespaced that users work with, except
// secrets (as upstream's view role).
func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		pr(readVerbs, core, "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
			"pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status",
			"bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
			"replicationcontrollers/status", "resourcequotas", "resourcequotas/status", "namespaces"),
		pr(readVerbs, g("discovery.k8s.io"), "endpointslices"),
		pr(readVerbs, g("apps"), "controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
			"deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
			"statefulsets/scale", "statefulsets/status"),
		pr(readVerbs, g("autoscaling"), "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		pr(readVerbs, g("batch"), "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
		pr(readVerbs, g("policy"), "poddisruptionbudgets", "poddisruptionbudgets/status"),
		pr(readVerbs, g("networking.k8s.io"), "ingresses", "ingresses/status", "networkpolicies"),
	}
}

// editRules add writing workloads, config and secrets, but not RBAC.
func editRules() []rbacv1.PolicyRule {
	return append(viewRules(),
		pr(readVerbs, core, "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"),
		pr(g("impersonate"), core, "serviceaccounts"),
		pr(writeVerbs, core, "pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
		pr(g("create"), core, "pods/eviction", "serviceaccounts/token"),
		pr(writeVerbs, core, "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
			"replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"),
		pr(writeVerbs, g("apps"), "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
			"replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"),
		pr(writeVerbs, g("autoscaling"), "horizontalpodautoscalers"),
		pr(writeVerbs, g("batch"), "cronjobs", "jobs"),
		pr(writeVerbs, g("policy"), "poddisruptionbudgets"),
		pr(writeVerbs, g("networking.k8s.io"), "ingresses", "networkpolicies"),
		pr(append(slices.Clone(writeVerbs), readVerbs...), g("coordination.k8s.io"), "leases"),
	)
}

// adminRules add roles and role bindings in the namespace.
func adminRules() []rbacv1.PolicyRule {
	return append(editRules(),
		pr(g("create"), g("authorization.k8s.io"), "localsubjectaccessreviews"),
		pr(append(slices.Clone(writeVerbs), readVerbs...), g("rbac.authorization.k8s.io"), "rolebindings", "roles"),
	)
}

func schedulerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		pr(eventVerbs, g("", "events.k8s.io"), "events"),
		pr(g("create"), g("coordination.k8s.io"), "leases"),
		prNamed(g("get", "update"), g("coordination.k8s.io"), "leases", "kube-scheduler"),
		pr(readVerbs, core, "nodes", "namespaces", "replicationcontrollers", "services",
			"persistentvolumeclaims", "persistentvolumes"),
		pr(append(g("delete"), readVerbs...), core, "pods"),
		pr(g("create"), core, "bindings", "pods/binding"),
		pr(statusRW, core, "pods/status"),
		pr(readVerbs, g("apps"), "replicasets", "statefulsets"),
		pr(readVerbs, g("policy"), "poddisruptionbudgets"),
		pr(readVerbs, g("storage.k8s.io"), "csinodes", "csidrivers", "csistoragecapacities", "storageclasses", "volumeattachments"),
		pr(g("patch", "update"), core, "persistentvolumeclaims", "persistentvolumes"), // volume binding
		pr(readVerbs, g("resource.k8s.io"), "resourceclaims", "resourceclaims/status", "resourceslices", "deviceclasses", "devicetaintrules"),
		pr(statusRW, g("resource.k8s.io"), "resourceclaims/status"),
		pr(g("create", "delete"), g("resource.k8s.io"), "resourceclaims"), // claims for DRA extended resources
		pr(readVerbs, g("scheduling.k8s.io"), "workloads", "podgroups"),   // gang scheduling (alpha upstream)
		pr(g("create"), g("authentication.k8s.io"), "tokenreviews"),
		pr(g("create"), g("authorization.k8s.io"), "subjectaccessreviews"),
	}
}

// controllerManagerRules: kubelab's reference controllers run under one
// identity (upstream splits this across per-controller service accounts),
// so the role reads everything, writes what the controllers own, and may
// patch and delete anything (the garbage collector), but may not create
// or change RBAC objects, nodes' specs or arbitrary kinds.
func controllerManagerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		pr(readVerbs, g("*"), "*"),
		pr(g("patch", "delete", "deletecollection"), g("*"), "*"), // garbage collector (ownerReferences, finalizers, cascading delete), namespace controller (emptying a namespace)
		pr(eventVerbs, g("", "events.k8s.io"), "events"),
		pr(g("create"), g("coordination.k8s.io"), "leases"),
		prNamed(g("get", "update"), g("coordination.k8s.io"), "leases", "kube-controller-manager"),
		pr(writeVerbs, core, "pods", "endpoints", "serviceaccounts", "secrets", "configmaps", "replicationcontrollers"),
		pr(statusRW, core, "pods/status", "nodes/status", "namespaces/status", "services/status",
			"replicationcontrollers/status", "persistentvolumeclaims/status", "persistentvolumes/status"),
		pr(g("update"), core, "namespaces/finalize", "nodes"),
		pr(g("create"), core, "pods/eviction", "pods/binding", "serviceaccounts/token"),
		pr(writeVerbs, g("apps"), "replicasets", "deployments", "daemonsets", "statefulsets", "controllerrevisions"),
		pr(statusRW, g("apps"), "replicasets/status", "deployments/status", "daemonsets/status", "statefulsets/status"),
		pr(writeVerbs, g("batch"), "jobs", "cronjobs"),
		pr(statusRW, g("batch"), "jobs/status", "cronjobs/status"),
		pr(writeVerbs, g("discovery.k8s.io"), "endpointslices"),
		pr(statusRW, g("policy"), "poddisruptionbudgets/status"),
		pr(g("create"), g("authentication.k8s.io"), "tokenreviews"),
		pr(g("create"), g("authorization.k8s.io"), "subjectaccessreviews"),
	}
}

// nodeRules: upstream's system:node. Which Node and which pods a kubelet
// may write is NodeRestriction admission's job, not RBAC's.
func nodeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		pr(g("create"), g("authentication.k8s.io"), "tokenreviews"),
		pr(g("create"), g("authorization.k8s.io"), "localsubjectaccessreviews", "subjectaccessreviews"),
		pr(readVerbs, core, "services", "pods", "configmaps", "secrets"),
		pr(append(g("create"), readVerbs...), core, "nodes"),
		pr(statusRW, core, "nodes", "nodes/status", "pods/status"),
		pr(eventVerbs, g("", "events.k8s.io"), "events"),
		pr(g("create", "delete"), core, "pods"),
		pr(g("create"), core, "pods/eviction", "serviceaccounts/token"),
		pr(g("get"), core, "persistentvolumeclaims", "persistentvolumes", "endpoints"),
		pr(g("get", "patch", "update"), core, "persistentvolumeclaims/status"),
		pr(g("create", "delete", "get", "patch", "update"), g("coordination.k8s.io"), "leases"),
		pr(g("get"), g("storage.k8s.io"), "volumeattachments"),
		pr(readVerbs, g("storage.k8s.io"), "csidrivers"),
		pr(g("create", "delete", "get", "patch", "update"), g("storage.k8s.io"), "csinodes"),
		pr(readVerbs, g("node.k8s.io"), "runtimeclasses"),
		pr(append(g("create"), readVerbs...), g("certificates.k8s.io"), "certificatesigningrequests"),
		pr(readVerbs, g("resource.k8s.io"), "resourceclaims"),
		pr(append(slices.Clone(writeVerbs), readVerbs...), g("resource.k8s.io"), "resourceslices"),
	}
}

func proxierRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		pr(g("list", "watch"), core, "endpoints", "services"),
		pr(readVerbs, core, "nodes"),
		pr(eventVerbs, g("", "events.k8s.io"), "events"),
		pr(g("list", "watch"), g("discovery.k8s.io"), "endpointslices"),
	}
}

// BootstrapPolicy returns the RBAC objects the API server creates on first
// start (kube-apiserver reconciles the same set on every start):
//
//	cluster-admin                  everything            ← Group system:masters
//	system:discovery               GET /api, /apis, …    ← Group system:authenticated
//	system:basic-user              self access reviews   ← Group system:authenticated
//	system:public-info-viewer      GET /healthz, /version… ← system:authenticated, system:unauthenticated
//	system:kube-scheduler          what the scheduler reads and writes ← User system:kube-scheduler
//	system:kube-controller-manager see controllerManagerRules        ← User system:kube-controller-manager
//	system:node                    what a kubelet reads and writes   ← Group system:nodes
//	system:node-proxier            services, endpoint slices, nodes  ← User system:kube-proxy
//	system:service-account-issuer-discovery  OIDC discovery, JWKS   ← Group system:serviceaccounts
//	admin, edit, view              for users to bind per namespace (no bindings)
//
// plus the Role extension-apiserver-authentication-reader in kube-system
// bound to the scheduler and controller manager. admin, edit and view hold
// their rules directly (no aggregation). Every object carries
// BootstrapLabel and AutoupdateAnnotation. Each call returns fresh objects
// the caller owns.
func BootstrapPolicy() *Policy {
	p := &Policy{}
	addRole := func(name string, rules []rbacv1.PolicyRule, subjects ...rbacv1.Subject) {
		p.ClusterRoles = append(p.ClusterRoles, &rbacv1.ClusterRole{ObjectMeta: bootstrapMeta("", name), Rules: rules})
		if len(subjects) > 0 {
			p.ClusterRoleBindings = append(p.ClusterRoleBindings, &rbacv1.ClusterRoleBinding{
				ObjectMeta: bootstrapMeta("", name),
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects:   subjects,
			})
		}
	}
	group := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n}
	}
	usr := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: n}
	}

	addRole(ClusterAdminRole, []rbacv1.PolicyRule{pr(g("*"), g("*"), "*"), prURLs(g("*"), "*")}, group(user.SystemPrivilegedGroup))
	addRole(DiscoveryRole, []rbacv1.PolicyRule{prURLs(g("get"), "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
		"/openapi", "/openapi/*", "/readyz", "/version", "/version/")}, group(user.AllAuthenticated))
	addRole(BasicUserRole, []rbacv1.PolicyRule{
		pr(g("create"), g("authorization.k8s.io"), "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
		pr(g("create"), g("authentication.k8s.io"), "selfsubjectreviews"),
	}, group(user.AllAuthenticated))
	addRole(PublicInfoViewerRole, []rbacv1.PolicyRule{prURLs(g("get"), "/healthz", "/livez", "/readyz", "/version", "/version/")},
		group(user.AllAuthenticated), group(user.AllUnauthenticated))
	addRole(SchedulerRole, schedulerRules(), usr(user.KubeScheduler))
	addRole(ControllerManagerRole, controllerManagerRules(), usr(user.KubeControllerManager))
	addRole(NodeRole, nodeRules(), group(user.NodesGroup))
	addRole(NodeProxierRole, proxierRules(), usr(user.KubeProxy))
	addRole(IssuerDiscoveryRole, []rbacv1.PolicyRule{prURLs(g("get"), "/.well-known/openid-configuration", "/openid/v1/jwks")},
		group(serviceaccount.AllServiceAccountsGroup))
	addRole(AdminRole, adminRules())
	addRole(EditRole, editRules())
	addRole(ViewRole, viewRules())

	p.Roles = append(p.Roles, &rbacv1.Role{
		ObjectMeta: bootstrapMeta(metav1.NamespaceSystem, AuthReaderRole),
		Rules:      []rbacv1.PolicyRule{prNamed(readVerbs, core, "configmaps", "extension-apiserver-authentication")},
	})
	p.RoleBindings = append(p.RoleBindings, &rbacv1.RoleBinding{
		ObjectMeta: bootstrapMeta(metav1.NamespaceSystem, "system::"+AuthReaderRole),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: AuthReaderRole},
		Subjects:   []rbacv1.Subject{usr(user.KubeScheduler), usr(user.KubeControllerManager)},
	})
	return p
}
