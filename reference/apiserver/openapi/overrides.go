package openapi

// override sets what a field's Go declaration does not say at run time
// (upstream writes it as +listType, +listMapKey, +mapType or +default
// comment markers).
type override struct {
	listType    string
	listMapKeys []string
	mapType     string
	def         any
}

// fieldOverrides, keyed by "<definition name>.<json field name>": lists
// keyed by more than their merge key (a port is its number and protocol),
// the defaults those keys need (server-side apply requires every key of an
// applied list item, or a default), lists that are sets or maps without
// patch tags, and maps that are atomic.
var fieldOverrides = map[string]override{
	"io.k8s.api.core.v1.Container.ports":                                       {listType: "map", listMapKeys: []string{"containerPort", "protocol"}},
	"io.k8s.api.core.v1.EphemeralContainer.ports":                              {listType: "map", listMapKeys: []string{"containerPort", "protocol"}},
	"io.k8s.api.core.v1.ContainerPort.protocol":                                {def: "TCP"},
	"io.k8s.api.core.v1.ServiceSpec.ports":                                     {listType: "map", listMapKeys: []string{"port", "protocol"}},
	"io.k8s.api.core.v1.ServicePort.protocol":                                  {def: "TCP"},
	"io.k8s.api.core.v1.PodSpec.topologySpreadConstraints":                     {listType: "map", listMapKeys: []string{"topologyKey", "whenUnsatisfiable"}},
	"io.k8s.api.core.v1.PodStatus.hostIPs":                                     {listType: "atomic"},
	"io.k8s.api.core.v1.PodStatus.volumeHealth":                                {listType: "map", listMapKeys: []string{"name"}},
	"io.k8s.api.core.v1.PodVolumeHealth.healthConditions":                      {listType: "map", listMapKeys: []string{"status", "reason"}},
	"io.k8s.api.core.v1.VolumeHealthStatus.healthConditions":                   {listType: "map", listMapKeys: []string{"status", "reason"}},
	"io.k8s.api.core.v1.ResourceRequirements.claims":                           {listType: "map", listMapKeys: []string{"name"}},
	"io.k8s.api.core.v1.ResourceStatus.resources":                              {listType: "map", listMapKeys: []string{"resourceID"}},
	"io.k8s.api.core.v1.VolumeMount.bindMountOptions":                          {listType: "set"},
	"io.k8s.api.core.v1.ContainerRestartRuleOnExitCodes.values":                {listType: "set"},
	"io.k8s.api.core.v1.PersistentVolumeSpec.claimRef":                         {mapType: "granular"},
	"io.k8s.api.core.v1.PersistentVolumeClaimStatus.allocatedResourceStatuses": {mapType: "granular"},
	"io.k8s.api.core.v1.PodSpec.nodeSelector":                                  {mapType: "atomic"},
	"io.k8s.api.core.v1.ServiceSpec.selector":                                  {mapType: "atomic"},
	"io.k8s.api.core.v1.ReplicationControllerSpec.selector":                    {mapType: "atomic"},
	"io.k8s.api.batch.v1.JobStatus.conditions":                                 {listType: "atomic"},
	"io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement.values":        {listType: "set"},
	"io.k8s.api.batch.v1.UncountedTerminatedPods.succeeded":                    {listType: "set"},
	"io.k8s.api.batch.v1.UncountedTerminatedPods.failed":                       {listType: "set"},
	"io.k8s.api.discovery.v1.Endpoint.addresses":                               {listType: "set"},
	"io.k8s.api.storage.v1.CSIDriverSpec.volumeLifecycleModes":                 {listType: "set"},
	"io.k8s.api.resource.v1.AllocatedDeviceStatus.conditions":                  {listType: "map", listMapKeys: []string{"type"}},
}

// mapTypes gives the x-kubernetes-map-type of definitions whose Go type is
// marked +structType=atomic upstream: references and selectors that are
// replaced as a whole, never merged field by field.
var mapTypes = map[string]string{}

func init() {
	for _, n := range []string{
		"io.k8s.api.core.v1.ConfigMapKeySelector", "io.k8s.api.core.v1.EndpointAddress",
		"io.k8s.api.core.v1.EndpointPort", "io.k8s.api.core.v1.FileKeySelector",
		"io.k8s.api.core.v1.LocalObjectReference", "io.k8s.api.core.v1.NodeSelector",
		"io.k8s.api.core.v1.NodeSelectorTerm", "io.k8s.api.core.v1.ObjectFieldSelector",
		"io.k8s.api.core.v1.ObjectReference", "io.k8s.api.core.v1.ResourceFieldSelector",
		"io.k8s.api.core.v1.ScopeSelector", "io.k8s.api.core.v1.SecretKeySelector",
		"io.k8s.api.core.v1.SecretReference", "io.k8s.api.core.v1.TopologySelectorTerm",
		"io.k8s.api.core.v1.TypedLocalObjectReference", "io.k8s.api.discovery.v1.EndpointPort",
		"io.k8s.api.networking.v1.ServiceBackendPort", "io.k8s.api.rbac.v1.RoleRef",
		"io.k8s.api.rbac.v1.Subject", "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
		"io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
	} {
		mapTypes[n] = "atomic"
	}
}

// specialDescriptions describes the special types that have no SwaggerDoc.
var specialDescriptions = map[string]string{
	"io.k8s.apimachinery.pkg.api.resource.Quantity":   "Quantity is a fixed-point number with an optional suffix: a binary SI suffix (Ki, Mi, Gi, Ti, Pi, Ei), a decimal SI suffix (n, u, m, \"\", k, M, G, T, P, E) or a decimal exponent (e3, E6). Examples: 100m (0.1), 128Mi, 1.5, 2e3.",
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString is a value that is either a 32-bit integer or a string, written as a JSON number or string; e.g. a port number or name, or a percentage.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Time":       "Time is a timestamp in RFC 3339 form with second precision, e.g. 2024-01-02T15:04:05Z.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":  "MicroTime is a timestamp in RFC 3339 form with microsecond precision.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Duration":   "Duration is a time.Duration written as a string, e.g. 1h2m3s.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1":   "FieldsV1 is a set of fields, written as a trie in JSON: each key is '.' (the field itself), 'f:<name>' (a field), 'k:<keys>' (a list item by its keys), 'v:<value>' (a set item) or 'i:<index>' (a list item by index).",
	"io.k8s.apimachinery.pkg.runtime.RawExtension":    "RawExtension holds an arbitrary embedded object as JSON.",
}
