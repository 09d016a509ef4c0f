// Package registry is the API server's storage layer: one table of resources
// (group, version, kind, scope, names, verbs, subresources and the strategy
// hooks that default and validate each kind) and a generic REST storage over
// spec.Store that implements the Kubernetes verbs for every entry of that
// table, with a watch cache in front of the store for lists and watches.
//
// It knows nothing of HTTP: its methods take typed options and return
// Kubernetes API errors (k8s.io/apimachinery/pkg/api/errors), which the
// apiserver package turns into metav1.Status responses.
//
// Key layout. An object is stored as its JSON encoding (the k8s.io/api type,
// with apiVersion and kind, without resourceVersion) under
//
//	<Resource.KeyPrefix>/<namespace>/<name>   namespaced resources
//	<Resource.KeyPrefix>/<name>               cluster-scoped resources
//
// where KeyPrefix is "/registry/<resource>" for core and most other kinds,
// "/registry/<group>/<resource>" where upstream does the same, and the
// historical upstream names for a few (services: "/registry/services/specs",
// endpoints: "/registry/services/endpoints", nodes: "/registry/minions").
// resourceVersion is the key's ModRevision in the store.
package registry

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// KeyRoot is the prefix under which every object is stored.
const KeyRoot = "/registry"

// Subresource names the registry understands.
const (
	// SubStatus is the status subresource: updates change only .status.
	SubStatus = "status"
	// SubScale is the scale subresource (autoscaling/v1 Scale).
	SubScale = "scale"
	// SubBinding is pods/binding: binds a pod to a node.
	SubBinding = "binding"
	// SubEviction is pods/eviction: a policy/v1 Eviction deletes the pod.
	SubEviction = "eviction"
	// SubToken is serviceaccounts/token: an authentication.k8s.io/v1
	// TokenRequest returns a service-account token (TokenRequest); served
	// only by a server that signs tokens.
	SubToken = "token"
	// SubLog is pods/log: the container's log, read from the kubelet.
	SubLog = "log"
	// SubExec is pods/exec: a command in a container, the upgraded
	// (SPDY or WebSocket) connection proxied to the kubelet.
	SubExec = "exec"
	// SubAttach is pods/attach: the container's stdio, proxied to the kubelet.
	SubAttach = "attach"
	// SubPortForward is pods/portforward: ports of the pod, proxied to the kubelet.
	SubPortForward = "portforward"
	// SubProxy is nodes/proxy: any path of the node's kubelet API.
	SubProxy = "proxy"
	// SubFinalize is namespaces/finalize: an update that changes only
	// spec.finalizers (the namespace controller removes the `kubernetes`
	// finalizer through it once the namespace is empty).
	SubFinalize = "finalize"
)

// Strategy holds the per-kind hooks of a resource. Every hook is optional.
// Hooks receive the resource's typed object (the type New returns) and may
// mutate it; they run in the order Default, PrepareForCreate/Update,
// Validate/ValidateUpdate.
type Strategy struct {
	// Default fills defaults, like upstream's generated defaulters.
	Default func(obj runtime.Object)
	// PrepareForCreate clears or sets fields on create (e.g. status).
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate adjusts obj from old on update of the main
	// resource (after the registry has restored old's status).
	PrepareForUpdate func(obj, old runtime.Object)
	// Validate checks a new object; metadata is validated by the registry.
	Validate func(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks an update (immutable fields and the like);
	// Validate runs too.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// Fields returns the object's selectable fields beyond metadata.name
	// and metadata.namespace, which the registry adds.
	Fields func(obj runtime.Object) fields.Set
	// NameValid validates metadata.name; nil means DNS subdomain.
	NameValid func(name string, prefix bool) []string
}

// Resource is one entry of the resource table.
type Resource struct {
	// Group and Version of the API the resource is served in.
	Group, Version string
	// Name is the plural lowercase resource name, e.g. "pods".
	Name string
	// Singular is the singular name, e.g. "pod".
	Singular string
	// Kind is the object kind, e.g. "Pod"; the list kind is Kind+"List".
	Kind string
	// Namespaced is true for namespaced resources.
	Namespaced bool
	// ShortNames and Categories are published in discovery.
	ShortNames, Categories []string
	// Subresources are the subresources served (SubStatus, SubScale, ...).
	Subresources []string
	// KeyPrefix overrides the store key prefix; empty means
	// "/registry/<Name>" (see the package doc).
	KeyPrefix string
	// New returns a new empty object, NewList a new empty list.
	New, NewList func() runtime.Object
	// Strategy holds the kind's hooks.
	Strategy Strategy
	// AllowCreateOnUpdate lets PUT create a missing object.
	AllowCreateOnUpdate bool
	// NoGeneration disables metadata.generation (kinds without a spec).
	NoGeneration bool
	// ReturnDeletedObject makes a delete that removes the object at once
	// answer with the object; otherwise the answer is a Status naming it.
	// Upstream sets it for pods, services, namespaces, service accounts,
	// persistent volumes and claims, resource quotas, and the storage.k8s.io
	// and resource.k8s.io kinds.
	ReturnDeletedObject bool
	// TTL, when > 0, makes new objects expire after it on stores that
	// support TTLs (spec.CapStoreTTL), like upstream's --event-ttl; on other
	// stores they live until deleted. A store Update drops the TTL, so an
	// object that is updated lives until deleted too.
	TTL time.Duration
	// Stored, when set, makes the resource share the storage of another
	// kind: objects are converted to it on write and from it on read (as
	// upstream stores events.k8s.io/v1 Events as core/v1 Events). KeyPrefix
	// must then be that kind's prefix.
	Stored *StorageConversion
}

// StorageConversion converts a resource's objects to and from the kind
// they are stored as.
type StorageConversion struct {
	// GVK is the stored kind; New returns an empty object of it.
	GVK schema.GroupVersionKind
	New func() runtime.Object
	// To converts an object of the resource to the stored kind; From the
	// other way. Neither may modify its argument.
	To, From func(runtime.Object) runtime.Object
}

// GroupVersion returns the resource's API group and version.
func (r *Resource) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: r.Group, Version: r.Version}
}

// GroupResource returns the resource's group and plural name.
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Name}
}

// GroupVersionKind returns the kind of the resource's objects.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion().WithKind(r.Kind)
}

// Prefix returns the store key prefix of the resource (no trailing slash).
func (r *Resource) Prefix() string {
	if r.KeyPrefix != "" {
		return r.KeyPrefix
	}
	return KeyRoot + "/" + r.Name
}

// Key returns the store key of the object namespace/name.
func (r *Resource) Key(namespace, name string) string {
	if r.Namespaced {
		return r.Prefix() + "/" + namespace + "/" + name
	}
	return r.Prefix() + "/" + name
}

// NamespacePrefix returns the key prefix of a list in namespace ("" = all).
func (r *Resource) NamespacePrefix(namespace string) string {
	if r.Namespaced && namespace != "" {
		return r.Prefix() + "/" + namespace
	}
	return r.Prefix()
}

// HasSubresource reports whether sub is served.
func (r *Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// Verbs returns the verbs published in discovery.
func (r *Resource) Verbs() []string {
	return []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

// hasField reports whether the object's struct has the named field.
func hasField(obj runtime.Object, name string) bool {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	return v.Elem().FieldByName(name).IsValid()
}

// copyField sets dst.<name> to src.<name> (both of the same struct type).
func copyField(dst, src runtime.Object, name string) {
	d := reflect.ValueOf(dst).Elem().FieldByName(name)
	s := reflect.ValueOf(src).Elem().FieldByName(name)
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}

// fieldValue returns obj.<name> as an interface, or nil.
func fieldValue(obj runtime.Object, name string) any {
	v := reflect.ValueOf(obj).Elem().FieldByName(name)
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}

// Table is the resource table, indexed for lookups. It is immutable after
// NewTable and safe for concurrent use.
type Table struct {
	list    []*Resource
	byGVR   map[schema.GroupVersionResource]*Resource
	byGroup map[string][]*Resource
	groups  []string // in order of first appearance, "" (core) first
}

// NewTable indexes resources. It fails on a duplicate group/version/resource
// or a resource without New/NewList.
func NewTable(resources []*Resource) (*Table, error) {
	t := &Table{byGVR: map[schema.GroupVersionResource]*Resource{}, byGroup: map[string][]*Resource{}}
	for _, r := range resources {
		gvr := r.GroupVersion().WithResource(r.Name)
		if _, dup := t.byGVR[gvr]; dup {
			return nil, fmt.Errorf("resource %s listed twice", gvr)
		}
		if r.New == nil || r.NewList == nil || r.Kind == "" || r.Name == "" {
			return nil, fmt.Errorf("resource %s: New, NewList, Kind and Name are required", gvr)
		}
		if r.Singular == "" {
			r.Singular = strings.ToLower(r.Kind)
		}
		t.byGVR[gvr] = r
		if _, ok := t.byGroup[r.Group]; !ok {
			t.groups = append(t.groups, r.Group)
		}
		t.byGroup[r.Group] = append(t.byGroup[r.Group], r)
		t.list = append(t.list, r)
	}
	return t, nil
}

// Lookup returns the resource group/version/name, or nil.
func (t *Table) Lookup(group, version, name string) *Resource {
	return t.byGVR[schema.GroupVersionResource{Group: group, Version: version, Resource: name}]
}

// All returns every resource in table order. The slice must not be changed.
func (t *Table) All() []*Resource { return t.list }

// Groups returns the API groups in table order; "" is the core group.
func (t *Table) Groups() []string { return t.groups }

// GroupResources returns the resources of group in table order.
func (t *Table) GroupResources(group string) []*Resource { return t.byGroup[group] }

// Versions returns the versions served for group, in table order.
func (t *Table) Versions(group string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range t.byGroup[group] {
		if !seen[r.Version] {
			seen[r.Version] = true
			out = append(out, r.Version)
		}
	}
	return out
}

// objectMeta returns obj's ObjectMeta accessor; every registry type has one.
func objectMeta(obj runtime.Object) metav1.Object {
	m, err := metaAccessor(obj)
	if err != nil {
		panic(fmt.Sprintf("registry: %T has no ObjectMeta: %v", obj, err))
	}
	return m
}

// SupportedFields returns the field selector keys r supports.
func SupportedFields(r *Resource) map[string]bool {
	out := map[string]bool{"metadata.name": true, "metadata.namespace": true}
	if r.Strategy.Fields != nil {
		for k := range r.Strategy.Fields(r.New()) {
			out[k] = true
		}
	}
	return out
}
