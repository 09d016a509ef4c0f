package registry

import (
	"k8s.io/apimachinery/pkg/api/validation/path"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// EventTTL is how long events live, as upstream's default --event-ttl.
const EventTTL = time.Hour

// newRes is the short form of a table entry.
func newRes[T any, L any, PT interface {
	*T
	runtime.Object
}, PL interface {
	*L
	runtime.Object
}](group, version, name, kind string, namespaced bool) *Resource {
	return &Resource{
		Group: group, Version: version, Name: name, Kind: kind, Namespaced: namespaced,
		New:     func() runtime.Object { return PT(new(T)) },
		NewList: func() runtime.Object { return PL(new(L)) },
	}
}

// with sets optional parts of a table entry and returns it.
func (r *Resource) with(f func(r *Resource)) *Resource { f(r); return r }

// Builtin returns the built-in resource table: core/v1, apps/v1, batch/v1,
// coordination.k8s.io/v1, discovery.k8s.io/v1, events.k8s.io/v1,
// networking.k8s.io/v1, policy/v1, rbac.authorization.k8s.io/v1,
// scheduling.k8s.io/v1, storage.k8s.io/v1 and resource.k8s.io/v1 — what
// kubectl users and the upstream kube-scheduler need. Each call returns new
// Resource values.
func Builtin() []*Resource {
	const core, apps, batch = "", "apps", "batch"
	all := []string{"all"}
	table := []*Resource{
		// core/v1
		newRes[corev1.Namespace, corev1.NamespaceList](core, "v1", "namespaces", "Namespace", false).with(func(r *Resource) {
			r.ShortNames = []string{"ns"}
			r.Subresources = []string{SubStatus, SubFinalize}
			r.Strategy = namespaceStrategy()
			r.NoGeneration = true
		}),
		newRes[corev1.Pod, corev1.PodList](core, "v1", "pods", "Pod", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"po"}, all
			r.Subresources = []string{SubStatus, SubBinding, SubEviction, SubLog, SubExec, SubAttach, SubPortForward}
			r.Strategy = podStrategy()
		}),
		newRes[corev1.Node, corev1.NodeList](core, "v1", "nodes", "Node", false).with(func(r *Resource) {
			r.ShortNames = []string{"no"}
			r.Subresources = []string{SubStatus, SubProxy}
			r.KeyPrefix = KeyRoot + "/minions"
			r.Strategy = nodeStrategy()
			r.NoGeneration = true
		}),
		newRes[corev1.Service, corev1.ServiceList](core, "v1", "services", "Service", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"svc"}, all
			r.Subresources = []string{SubStatus}
			r.KeyPrefix = KeyRoot + "/services/specs"
			r.Strategy = serviceStrategy()
			r.NoGeneration = true
		}),
		newRes[corev1.Endpoints, corev1.EndpointsList](core, "v1", "endpoints", "Endpoints", true).with(func(r *Resource) {
			r.ShortNames = []string{"ep"}
			r.KeyPrefix = KeyRoot + "/services/endpoints"
			r.AllowCreateOnUpdate = true
			r.NoGeneration = true
		}),
		newRes[corev1.ConfigMap, corev1.ConfigMapList](core, "v1", "configmaps", "ConfigMap", true).with(func(r *Resource) {
			r.ShortNames = []string{"cm"}
			r.NoGeneration = true
		}),
		newRes[corev1.Secret, corev1.SecretList](core, "v1", "secrets", "Secret", true).with(func(r *Resource) {
			r.Strategy = secretStrategy()
			r.NoGeneration = true
		}),
		newRes[corev1.ServiceAccount, corev1.ServiceAccountList](core, "v1", "serviceaccounts", "ServiceAccount", true).with(func(r *Resource) {
			r.ShortNames = []string{"sa"}
			r.NoGeneration = true
			r.Subresources = []string{SubToken}
		}),
		newRes[corev1.Event, corev1.EventList](core, "v1", "events", "Event", true).with(func(r *Resource) {
			r.ShortNames = []string{"ev"}
			r.TTL = EventTTL
			r.Strategy = eventStrategy()
			r.AllowCreateOnUpdate = true
			r.NoGeneration = true
		}),
		newRes[corev1.ReplicationController, corev1.ReplicationControllerList](core, "v1", "replicationcontrollers", "ReplicationController", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"rc"}, all
			r.Subresources = []string{SubStatus}
		}),
		newRes[corev1.PersistentVolume, corev1.PersistentVolumeList](core, "v1", "persistentvolumes", "PersistentVolume", false).with(func(r *Resource) {
			r.ShortNames = []string{"pv"}
			r.Subresources = []string{SubStatus}
			r.NoGeneration = true
		}),
		newRes[corev1.PersistentVolumeClaim, corev1.PersistentVolumeClaimList](core, "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true).with(func(r *Resource) {
			r.ShortNames = []string{"pvc"}
			r.Subresources = []string{SubStatus}
			r.NoGeneration = true
		}),
		newRes[corev1.LimitRange, corev1.LimitRangeList](core, "v1", "limitranges", "LimitRange", true).with(func(r *Resource) {
			r.ShortNames = []string{"limits"}
			r.NoGeneration = true
		}),
		newRes[corev1.ResourceQuota, corev1.ResourceQuotaList](core, "v1", "resourcequotas", "ResourceQuota", true).with(func(r *Resource) {
			r.ShortNames = []string{"quota"}
			r.Subresources = []string{SubStatus}
			r.NoGeneration = true
		}),

		// apps/v1
		newRes[appsv1.Deployment, appsv1.DeploymentList](apps, "v1", "deployments", "Deployment", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"deploy"}, all
			r.Subresources = []string{SubStatus, SubScale}
			r.Strategy = deploymentStrategy()
		}),
		newRes[appsv1.ReplicaSet, appsv1.ReplicaSetList](apps, "v1", "replicasets", "ReplicaSet", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"rs"}, all
			r.Subresources = []string{SubStatus, SubScale}
			r.Strategy = replicaSetStrategy()
		}),
		newRes[appsv1.DaemonSet, appsv1.DaemonSetList](apps, "v1", "daemonsets", "DaemonSet", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"ds"}, all
			r.Subresources = []string{SubStatus}
			r.Strategy = daemonSetStrategy()
		}),
		newRes[appsv1.StatefulSet, appsv1.StatefulSetList](apps, "v1", "statefulsets", "StatefulSet", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"sts"}, all
			r.Subresources = []string{SubStatus, SubScale}
			r.Strategy = statefulSetStrategy()
		}),
		newRes[appsv1.ControllerRevision, appsv1.ControllerRevisionList](apps, "v1", "controllerrevisions", "ControllerRevision", true).with(func(r *Resource) {
			r.NoGeneration = true
		}),

		// batch/v1
		newRes[batchv1.Job, batchv1.JobList](batch, "v1", "jobs", "Job", true).with(func(r *Resource) {
			r.Categories = all
			r.Subresources = []string{SubStatus}
			r.Strategy = jobStrategy()
		}),
		newRes[batchv1.CronJob, batchv1.CronJobList](batch, "v1", "cronjobs", "CronJob", true).with(func(r *Resource) {
			r.ShortNames, r.Categories = []string{"cj"}, all
			r.Subresources = []string{SubStatus}
		}),

		// coordination.k8s.io/v1
		newRes[coordinationv1.Lease, coordinationv1.LeaseList]("coordination.k8s.io", "v1", "leases", "Lease", true).with(func(r *Resource) {
			r.NoGeneration = true
			r.Strategy = leaseStrategy()
		}),
		// discovery.k8s.io/v1
		newRes[discoveryv1.EndpointSlice, discoveryv1.EndpointSliceList]("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true).with(func(r *Resource) {
			r.NoGeneration = true
		}),
		// events.k8s.io/v1: the same objects as core/v1 events, converted
		newRes[eventsv1.Event, eventsv1.EventList]("events.k8s.io", "v1", "events", "Event", true).with(func(r *Resource) {
			r.ShortNames = []string{"ev"}
			r.Stored = eventStorage()
			r.TTL = EventTTL
			r.Strategy = eventsV1Strategy()
			r.AllowCreateOnUpdate = true
			r.NoGeneration = true
		}),
		// networking.k8s.io/v1
		newRes[networkingv1.Ingress, networkingv1.IngressList]("networking.k8s.io", "v1", "ingresses", "Ingress", true).with(func(r *Resource) {
			r.ShortNames = []string{"ing"}
			r.Subresources = []string{SubStatus}
			r.KeyPrefix = KeyRoot + "/ingress"
		}),
		newRes[networkingv1.NetworkPolicy, networkingv1.NetworkPolicyList]("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true).with(func(r *Resource) {
			r.ShortNames = []string{"netpol"}
		}),
		newRes[networkingv1.IngressClass, networkingv1.IngressClassList]("networking.k8s.io", "v1", "ingressclasses", "IngressClass", false),
		// policy/v1
		newRes[policyv1.PodDisruptionBudget, policyv1.PodDisruptionBudgetList]("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true).with(func(r *Resource) {
			r.ShortNames = []string{"pdb"}
			r.Subresources = []string{SubStatus}
		}).with(validPDB),
		// node.k8s.io/v1
		newRes[nodev1.RuntimeClass, nodev1.RuntimeClassList]("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", false).with(func(r *Resource) {
			r.NoGeneration = true
			r.Strategy = runtimeClassStrategy()
		}),
		// rbac.authorization.k8s.io/v1
		newRes[rbacv1.Role, rbacv1.RoleList]("rbac.authorization.k8s.io", "v1", "roles", "Role", true).with(noGen).with(rbacNames).with(validRBACRules),
		newRes[rbacv1.ClusterRole, rbacv1.ClusterRoleList]("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false).with(noGen).with(rbacNames).with(validRBACRules),
		newRes[rbacv1.RoleBinding, rbacv1.RoleBindingList]("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true).with(noGen).with(rbacNames).with(roleRefImmutable),
		newRes[rbacv1.ClusterRoleBinding, rbacv1.ClusterRoleBindingList]("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false).with(noGen).with(rbacNames).with(roleRefImmutable),
		// scheduling.k8s.io/v1
		newRes[schedulingv1.PriorityClass, schedulingv1.PriorityClassList]("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false).with(func(r *Resource) {
			r.ShortNames = []string{"pc"}
			r.NoGeneration = true
			r.Strategy = priorityClassStrategy()
		}),
		// storage.k8s.io/v1
		newRes[storagev1.StorageClass, storagev1.StorageClassList]("storage.k8s.io", "v1", "storageclasses", "StorageClass", false).with(func(r *Resource) {
			r.ShortNames = []string{"sc"}
			r.NoGeneration = true
		}),
		newRes[storagev1.CSINode, storagev1.CSINodeList]("storage.k8s.io", "v1", "csinodes", "CSINode", false).with(noGen),
		newRes[storagev1.CSIDriver, storagev1.CSIDriverList]("storage.k8s.io", "v1", "csidrivers", "CSIDriver", false).with(noGen),
		newRes[storagev1.CSIStorageCapacity, storagev1.CSIStorageCapacityList]("storage.k8s.io", "v1", "csistoragecapacities", "CSIStorageCapacity", true).with(noGen),
		newRes[storagev1.VolumeAttachment, storagev1.VolumeAttachmentList]("storage.k8s.io", "v1", "volumeattachments", "VolumeAttachment", false).with(func(r *Resource) {
			r.Subresources = []string{SubStatus}
		}),
		newRes[storagev1.VolumeAttributesClass, storagev1.VolumeAttributesClassList]("storage.k8s.io", "v1", "volumeattributesclasses", "VolumeAttributesClass", false).with(func(r *Resource) {
			r.ShortNames = []string{"vac"}
			r.NoGeneration = true
		}),
		// resource.k8s.io/v1
		newRes[resourcev1.ResourceClaim, resourcev1.ResourceClaimList]("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim", true).with(func(r *Resource) {
			r.Subresources = []string{SubStatus}
		}),
		newRes[resourcev1.ResourceClaimTemplate, resourcev1.ResourceClaimTemplateList]("resource.k8s.io", "v1", "resourceclaimtemplates", "ResourceClaimTemplate", true),
		newRes[resourcev1.ResourceSlice, resourcev1.ResourceSliceList]("resource.k8s.io", "v1", "resourceslices", "ResourceSlice", false),
		newRes[resourcev1.DeviceClass, resourcev1.DeviceClassList]("resource.k8s.io", "v1", "deviceclasses", "DeviceClass", false),
		newRes[resourcev1.DeviceTaintRule, resourcev1.DeviceTaintRuleList]("resource.k8s.io", "v1", "devicetaintrules", "DeviceTaintRule", false).with(func(r *Resource) {
			r.Subresources = []string{SubStatus}
		}),
	}
	for _, r := range table {
		r.ReturnDeletedObject = returnsDeletedObject[r.Group+"/"+r.Name]
	}
	return table
}

// returnsDeletedObject are the group/resources whose immediate delete
// answers with the deleted object rather than a Status, as upstream's
// registries (ReturnDeletedObject).
var returnsDeletedObject = map[string]bool{
	"/pods": true, "/services": true, "/namespaces": true, "/serviceaccounts": true,
	"/persistentvolumes": true, "/persistentvolumeclaims": true, "/resourcequotas": true,
	"node.k8s.io/runtimeclasses": true, "storage.k8s.io/storageclasses": true, "storage.k8s.io/csinodes": true, "storage.k8s.io/csidrivers": true,
	"storage.k8s.io/volumeattachments": true, "storage.k8s.io/volumeattributesclasses": true,
	"resource.k8s.io/resourceclaims": true, "resource.k8s.io/resourceclaimtemplates": true,
	"resource.k8s.io/resourceslices": true, "resource.k8s.io/deviceclasses": true,
}

func noGen(r *Resource) { r.NoGeneration = true }

// rbacNames: RBAC object names need only be valid path segments (as
// upstream's ValidateRBACName), so "system:node" is a valid name.
func rbacNames(r *Resource) { r.Strategy.NameValid = path.ValidatePathSegmentName }
