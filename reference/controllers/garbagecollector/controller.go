package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/restmapper"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Controller is the garbage collector.
type Controller struct {
	ctx    controller.Context
	dyn    dynamic.Interface
	queue  workqueue.TypedRateLimitingInterface[string]
	mapper *restmapper.DeferredDiscoveryRESTMapper

	mu         sync.Mutex
	informers  map[schema.GroupVersionResource]toolscache.SharedIndexInformer
	dependents map[types.UID]map[string]bool // owner UID → dependent keys (the graph)
	owners     map[string][]types.UID        // dependent key → its owner UIDs
	keys       map[types.UID]string          // object UID → its key
}

// ownerPrefix marks a queue key as an owner being deleted with the orphan
// or foregroundDeletion finalizer (the collector's part of Orphan and
// Foreground propagation).
const ownerPrefix = "owner:"

// New returns the collector; it needs c.Dynamic. Its informers (one per
// resource discovery lists) start in Run.
func New(c controller.Context) (*Controller, error) {
	if c.Dynamic == nil {
		return nil, errors.New("garbage collector: no dynamic client (Context.Dynamic)")
	}
	return &Controller{ctx: c, dyn: c.Dynamic, queue: c.NewQueue("garbage_collector_attempt_to_delete"),
		mapper:     restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery())),
		informers:  map[schema.GroupVersionResource]toolscache.SharedIndexInformer{},
		dependents: map[types.UID]map[string]bool{}, owners: map[string][]types.UID{}, keys: map[types.UID]string{}}, nil
}

// key is "group/version/resource|namespace|name".
func key(gvr schema.GroupVersionResource, ns, name string) string {
	return gvr.Group + "/" + gvr.Version + "/" + gvr.Resource + "|" + ns + "|" + name
}

func parseKey(k string) (schema.GroupVersionResource, string, string, bool) {
	parts := strings.Split(k, "|")
	if len(parts) != 3 {
		return schema.GroupVersionResource{}, "", "", false
	}
	g := strings.SplitN(parts[0], "/", 3)
	if len(g) != 3 {
		return schema.GroupVersionResource{}, "", "", false
	}
	return schema.GroupVersionResource{Group: g[0], Version: g[1], Resource: g[2]}, parts[1], parts[2], true
}

// Run discovers the resources, starts an informer per resource, and syncs
// dependents with 5 workers until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	lists, err := ctl.ctx.Client.Discovery().ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		ctl.ctx.Log().Error("garbage collector: discovery failed; not running", "err", err)
		<-ctx.Done()
		return
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(ctl.dyn, 0)
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			inf := factory.ForResource(gvr).Informer()
			if _, err := inf.AddEventHandler(ctl.handler(gvr)); err != nil {
				ctl.ctx.Log().Error("garbage collector: informer", "resource", gvr.String(), "err", err)
				continue
			}
			ctl.mu.Lock()
			ctl.informers[gvr] = inf
			ctl.mu.Unlock()
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, 5, ctl.sync)
}

// handler maintains the graph and queues dependents to look at: an object
// with owners when it is added or changes; the dependents of an object
// when it is deleted.
func (ctl *Controller) handler(gvr schema.GroupVersionResource) toolscache.ResourceEventHandler {
	upsert := func(obj any) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		k := key(gvr, m.GetNamespace(), m.GetName())
		var uids []types.UID
		for _, r := range m.GetOwnerReferences() {
			uids = append(uids, r.UID)
		}
		ctl.mu.Lock()
		for _, u := range ctl.owners[k] {
			delete(ctl.dependents[u], k)
		}
		ctl.owners[k] = uids
		ctl.keys[m.GetUID()] = k
		for _, u := range uids {
			if ctl.dependents[u] == nil {
				ctl.dependents[u] = map[string]bool{}
			}
			ctl.dependents[u][k] = true
		}
		ctl.mu.Unlock()
		if len(uids) > 0 {
			ctl.queue.Add(k)
		}
		if m.GetDeletionTimestamp() != nil && (slices.Contains(m.GetFinalizers(), metav1.FinalizerOrphanDependents) || slices.Contains(m.GetFinalizers(), metav1.FinalizerDeleteDependents)) {
			ctl.queue.Add(ownerPrefix + k)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, n any) { upsert(n) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			m, err := meta.Accessor(obj)
			if err != nil {
				return
			}
			k := key(gvr, m.GetNamespace(), m.GetName())
			ctl.mu.Lock()
			for _, u := range ctl.owners[k] {
				delete(ctl.dependents[u], k)
			}
			var deps []string
			for d := range ctl.dependents[m.GetUID()] {
				deps = append(deps, d)
			}
			// Its owners may be waiting for it (Foreground).
			for _, u := range ctl.owners[k] {
				if ok, found := ctl.keys[u]; found {
					deps = append(deps, ownerPrefix+ok)
				}
			}
			delete(ctl.owners, k)
			if ctl.keys[m.GetUID()] == k {
				delete(ctl.keys, m.GetUID())
			}
			ctl.mu.Unlock()
			for _, d := range deps {
				ctl.queue.Add(d)
			}
		},
	}
}

// sync decides about one dependent and acts.
func (ctl *Controller) sync(ctx context.Context, k string) error {
	if o, ok := strings.CutPrefix(k, ownerPrefix); ok {
		return ctl.syncOwner(ctx, o)
	}
	gvr, ns, name, ok := parseKey(k)
	if !ok {
		return fmt.Errorf("bad key %q: %w", k, controller.ErrNoRetry)
	}
	dep, err := ctl.cached(gvr, ns, name)
	if err != nil || dep == nil {
		return err
	}
	states := map[types.UID]OwnerState{}
	for _, r := range dep.GetOwnerReferences() {
		st, err := ctl.ownerState(ctx, r, ns)
		if err != nil {
			return err
		}
		states[r.UID] = st
	}
	a := Decide(dep, states)
	ri := ctl.dyn.Resource(gvr).Namespace(ns)
	switch {
	case a.Delete:
		// Preconditions: the object decided on, unchanged (a dependent
		// orphaned meanwhile conflicts and is looked at again).
		uid, rv := dep.GetUID(), dep.GetResourceVersion()
		err := ri.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}, PropagationPolicy: &a.Policy})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	case len(a.RemoveOwners) > 0:
		var keep []metav1.OwnerReference
		for _, r := range dep.GetOwnerReferences() {
			if !slices.Contains(a.RemoveOwners, r.UID) {
				keep = append(keep, r)
			}
		}
		patch, err := json.Marshal([]map[string]any{
			{"op": "test", "path": "/metadata/uid", "value": dep.GetUID()},
			{"op": "test", "path": "/metadata/resourceVersion", "value": dep.GetResourceVersion()},
			{"op": "replace", "path": "/metadata/ownerReferences", "value": keep},
		})
		if err != nil {
			return err
		}
		_, err = ri.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove owner references of %s: %w", k, err)
		}
	}
	return nil
}

// cached returns the object from its resource's informer, nil when absent.
func (ctl *Controller) cached(gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	ctl.mu.Lock()
	inf := ctl.informers[gvr]
	ctl.mu.Unlock()
	if inf == nil {
		return nil, nil
	}
	sk := name
	if ns != "" {
		sk = ns + "/" + name
	}
	obj, ok, err := inf.GetIndexer().GetByKey(sk)
	if err != nil || !ok {
		return nil, err
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u, nil
}

// ownerState observes the owner ref names for a dependent in namespace ns:
// from the caches when there, else by a live GET (a cache that trails a
// just-created owner must not get its dependents deleted).
func (ctl *Controller) ownerState(ctx context.Context, ref metav1.OwnerReference, ns string) (OwnerState, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return Dangling, nil // an owner no API serves
	}
	mapping, err := ctl.mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version)
	if meta.IsNoMatchError(err) {
		ctl.mapper.Reset()
		return 0, fmt.Errorf("owner kind %s: %w", gv.WithKind(ref.Kind), err)
	}
	if err != nil {
		return 0, err
	}
	ownerNS := ""
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ownerNS = ns
	}
	state := func(o *unstructured.Unstructured) OwnerState {
		if o.GetUID() != ref.UID {
			return Dangling
		}
		if o.GetDeletionTimestamp() != nil && slices.Contains(o.GetFinalizers(), metav1.FinalizerDeleteDependents) {
			return Waiting
		}
		return Solid
	}
	if o, err := ctl.cached(mapping.Resource, ownerNS, ref.Name); err == nil && o != nil && o.GetUID() == ref.UID {
		return state(o), nil
	}
	o, err := ctl.dyn.Resource(mapping.Resource).Namespace(ownerNS).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Dangling, nil
	}
	if err != nil {
		return 0, err
	}
	return state(o), nil
}

// syncOwner does the collector's part for an owner being deleted with the
// orphan finalizer (remove the references to it from its dependents, then
// the finalizer) or the foregroundDeletion finalizer (its dependents are
// deleted — Decide sees it Waiting — and once none with blockOwnerDeletion
// is left, the finalizer is removed).
func (ctl *Controller) syncOwner(ctx context.Context, k string) error {
	gvr, ns, name, ok := parseKey(k)
	if !ok {
		return fmt.Errorf("bad key %q: %w", k, controller.ErrNoRetry)
	}
	owner, err := ctl.cached(gvr, ns, name)
	if err != nil || owner == nil || owner.GetDeletionTimestamp() == nil {
		return err
	}
	uid := owner.GetUID()
	ctl.mu.Lock()
	var deps []string
	for d := range ctl.dependents[uid] {
		deps = append(deps, d)
	}
	ctl.mu.Unlock()
	fins := owner.GetFinalizers()
	var done string
	switch {
	case slices.Contains(fins, metav1.FinalizerOrphanDependents):
		for _, d := range deps {
			if err := ctl.dropOwner(ctx, d, uid); err != nil {
				return err
			}
		}
		done = metav1.FinalizerOrphanDependents
	case slices.Contains(fins, metav1.FinalizerDeleteDependents):
		blocking := 0
		for _, d := range deps {
			dgvr, dns, dname, ok := parseKey(d)
			if !ok {
				continue
			}
			dep, err := ctl.cached(dgvr, dns, dname)
			if err != nil || dep == nil {
				continue
			}
			for _, r := range dep.GetOwnerReferences() {
				if r.UID == uid && r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
					blocking++
				}
			}
			ctl.queue.Add(d) // Decide deletes it: its owner is Waiting
		}
		if blocking > 0 {
			return nil // their deletes requeue the owner
		}
		done = metav1.FinalizerDeleteDependents
	default:
		return nil
	}
	return ctl.removeFinalizer(ctx, gvr, owner, done)
}

// dropOwner removes the owner reference to uid from the dependent key d.
func (ctl *Controller) dropOwner(ctx context.Context, d string, uid types.UID) error {
	gvr, ns, name, ok := parseKey(d)
	if !ok {
		return nil
	}
	dep, err := ctl.cached(gvr, ns, name)
	if err != nil || dep == nil {
		return err
	}
	var keep []metav1.OwnerReference
	for _, r := range dep.GetOwnerReferences() {
		if r.UID != uid {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(dep.GetOwnerReferences()) {
		return nil
	}
	return ctl.patchGuarded(ctx, gvr, dep, "/metadata/ownerReferences", keep)
}

// removeFinalizer removes fin from obj's finalizers.
func (ctl *Controller) removeFinalizer(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, fin string) error {
	keep := slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == fin })
	if keep == nil {
		keep = []string{}
	}
	return ctl.patchGuarded(ctx, gvr, obj, "/metadata/finalizers", keep)
}

// patchGuarded replaces path in obj with value by a JSON patch that fails
// (409/422, retried) unless obj is unchanged (uid and resourceVersion).
func (ctl *Controller) patchGuarded(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, path string, value any) error {
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": obj.GetUID()},
		{"op": "test", "path": "/metadata/resourceVersion", "value": obj.GetResourceVersion()},
		{"op": "replace", "path": path, "value": value},
	})
	if err != nil {
		return err
	}
	_, err = ctl.dyn.Resource(gvr).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch %s %s/%s %s: %w", gvr.Resource, obj.GetNamespace(), obj.GetName(), path, err)
	}
	return nil
}
