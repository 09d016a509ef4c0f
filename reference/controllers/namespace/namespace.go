// Package namespace is the namespace controller ("namespace"): a namespace
// being deleted (deletionTimestamp set, status.phase Terminating, the
// `kubernetes` finalizer in spec.finalizers) is emptied of every namespaced
// object discovery lists, its NamespaceDeletion* / NamespaceContentRemaining
// / NamespaceFinalizersRemaining conditions report the progress, and once
// nothing remains the `kubernetes` finalizer is removed through
// namespaces/finalize, upon which the API server removes the namespace.
//
// Plan (what a pass deletes, and how) and Decide (the conditions, whether
// to finalize, when to look again) are the decisions; Controller is the
// edge: discovery (ServerPreferredNamespacedResources), the dynamic client
// (DeleteCollection where the resource supports it, else list and delete
// each object), the status and finalize writes.
package namespace

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Name is the controller's older name in --controllers (upstream's alias).
const Name = "namespace"

// Step deletes the objects of one resource in the namespace.
type Step struct {
	// Resource is the group/version/resource (discovery's preferred
	// version).
	Resource schema.GroupVersionResource
	// Collection: the resource supports deletecollection, one request
	// deletes everything; otherwise each listed object is deleted.
	Collection bool
}

// Plan returns the deletion steps for the namespaced resources discovery
// lists (subresources and resources without the list and delete verbs are
// skipped, as upstream), sorted by group/resource, and the group versions
// that could not be parsed (the NamespaceDeletionGroupVersionParsingFailure
// condition).
func Plan(lists []*metav1.APIResourceList) (steps []Step, parseFailures []string) {
	for _, l := range lists {
		if l == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			parseFailures = append(parseFailures, fmt.Sprintf("%s: %v", l.GroupVersion, err))
			continue
		}
		for _, r := range l.APIResources {
			if !r.Namespaced || strings.Contains(r.Name, "/") {
				continue
			}
			if !slices.Contains(r.Verbs, "delete") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			steps = append(steps, Step{Resource: gv.WithResource(r.Name), Collection: slices.Contains(r.Verbs, "deletecollection")})
		}
	}
	sort.Slice(steps, func(i, j int) bool {
		a, b := steps[i].Resource, steps[j].Resource
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Resource < b.Resource
	})
	return steps, parseFailures
}

// Content is what one deletion pass over a namespace observed.
type Content struct {
	// DiscoveryFailures are the group versions discovery failed for
	// ("group/version: error").
	DiscoveryFailures []string
	// ParseFailures are the group versions Plan could not parse.
	ParseFailures []string
	// DeleteFailures are the failed deletes or lists ("resource: error").
	DeleteFailures []string
	// Remaining counts the objects still there after the pass, by
	// resource (zero counts may be left out).
	Remaining map[schema.GroupResource]int
	// Finalizers counts, by finalizer, the remaining objects it holds.
	Finalizers map[string]int
	// EstimateSeconds is how long the slowest remaining object should
	// still take (a pod's grace period left); 0 when unknown.
	EstimateSeconds int64
}

// Decision is what to do after a pass.
type Decision struct {
	// Conditions is the namespace's new status.conditions.
	Conditions []corev1.NamespaceCondition
	// Finalize: nothing remains and nothing failed; remove the
	// `kubernetes` finalizer.
	Finalize bool
	// RequeueAfter is when to look again (0 when finalizing).
	RequeueAfter time.Duration
}

// The condition reasons and messages are upstream's.
const (
	reasonDiscoveryFailed    = "DiscoveryFailed"
	reasonDiscovered         = "ResourcesDiscovered"
	reasonParsingFailed      = "GroupVersionParsingFailed"
	reasonParsed             = "ParsedGroupVersions"
	reasonContentFailed      = "ContentDeletionFailed"
	reasonContentDeleted     = "ContentDeleted"
	reasonResourcesRemain    = "SomeResourcesRemain"
	reasonContentRemoved     = "ContentRemoved"
	reasonFinalizersRemain   = "SomeFinalizersRemain"
	reasonNoFinalizersRemain = "ContentHasNoFinalizers"
)

// Decide decides, from ns and what a pass over it observed at now, its
// conditions (the five deletion conditions, each True or False with
// upstream's reasons; a condition whose status is unchanged keeps its
// lastTransitionTime; other conditions are kept), whether to finalize it
// and when to look again otherwise.
func Decide(ns *corev1.Namespace, c Content, now metav1.Time) Decision {
	var remaining, finalizers []string
	for gr, n := range c.Remaining {
		if n > 0 {
			remaining = append(remaining, fmt.Sprintf("%s has %d resource instances", gr, n))
		}
	}
	for f, n := range c.Finalizers {
		if n > 0 {
			finalizers = append(finalizers, fmt.Sprintf("%s in %d resource instances", f, n))
		}
	}
	sort.Strings(remaining)
	sort.Strings(finalizers)
	want := []corev1.NamespaceCondition{
		condition(corev1.NamespaceDeletionDiscoveryFailure, c.DiscoveryFailures, reasonDiscoveryFailed, "Discovery failed for some groups, %d failing: %s",
			reasonDiscovered, "All resources successfully discovered"),
		condition(corev1.NamespaceDeletionGVParsingFailure, c.ParseFailures, reasonParsingFailed, "GroupVersion parsing failed for some groups, %d failing: %s",
			reasonParsed, "All legacy kube types successfully parsed"),
		condition(corev1.NamespaceDeletionContentFailure, c.DeleteFailures, reasonContentFailed, "Failed to delete all resource types, %d remaining: %s",
			reasonContentDeleted, "All content successfully deleted, may be waiting on finalization"),
		condition(corev1.NamespaceContentRemaining, remaining, reasonResourcesRemain, "Some resources are remaining: %[2]s",
			reasonContentRemoved, "All content successfully removed"),
		condition(corev1.NamespaceFinalizersRemaining, finalizers, reasonFinalizersRemain, "Some content in the namespace has finalizers remaining: %[2]s",
			reasonNoFinalizersRemain, "All content-preserving finalizers finished"),
	}
	d := Decision{Conditions: mergeConditions(ns.Status.Conditions, want, now)}
	if len(c.DiscoveryFailures)+len(c.ParseFailures)+len(c.DeleteFailures)+len(remaining) == 0 {
		d.Finalize = true
		return d
	}
	// As upstream: half the estimate, plus a second.
	d.RequeueAfter = time.Duration(c.EstimateSeconds/2+1) * time.Second
	return d
}

// condition is True with reasonTrue and msgTrue (formatted with the count
// and the joined items) when items is not empty, else False.
func condition(t corev1.NamespaceConditionType, items []string, reasonTrue, msgTrue, reasonFalse, msgFalse string) corev1.NamespaceCondition {
	if len(items) == 0 {
		return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: reasonFalse, Message: msgFalse}
	}
	return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: reasonTrue,
		Message: fmt.Sprintf(msgTrue, len(items), strings.Join(items, ", "))}
}

// mergeConditions returns cur with want's conditions replacing those of the
// same type (appended when absent); a condition keeps its
// lastTransitionTime unless its status changes (then now).
func mergeConditions(cur, want []corev1.NamespaceCondition, now metav1.Time) []corev1.NamespaceCondition {
	out := slices.Clone(cur)
	for _, w := range want {
		i := slices.IndexFunc(out, func(c corev1.NamespaceCondition) bool { return c.Type == w.Type })
		if i < 0 {
			w.LastTransitionTime = now
			out = append(out, w)
			continue
		}
		w.LastTransitionTime = out[i].LastTransitionTime
		if out[i].Status != w.Status {
			w.LastTransitionTime = now
		}
		out[i] = w
	}
	return out
}

// Terminating: ns is being deleted and still holds the `kubernetes`
// finalizer, so the controller has work to do.
func Terminating(ns *corev1.Namespace) bool {
	return ns.DeletionTimestamp != nil && slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

// WithoutFinalizer returns a copy of ns without the `kubernetes` finalizer
// in spec.finalizers (the body of namespaces/finalize).
func WithoutFinalizer(ns *corev1.Namespace) *corev1.Namespace {
	out := ns.DeepCopy()
	out.Spec.Finalizers = slices.DeleteFunc(out.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	return out
}
