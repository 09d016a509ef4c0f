package admission

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PriorityName is the Priority plugin's name.
const PriorityName = "Priority"

// Built-in priority classes, with upstream's names and values.
const (
	// SystemClusterCritical is the class of pods a cluster needs to work
	// (value SystemCriticalPriority).
	SystemClusterCritical = "system-cluster-critical"
	// SystemNodeCritical is the class of pods a node needs to work (value
	// SystemNodeCriticalPriority), above system-cluster-critical.
	SystemNodeCritical = "system-node-critical"
	// SystemCriticalPriority is system-cluster-critical's value; user
	// classes may not exceed HighestUserDefinablePriority.
	SystemCriticalPriority int32 = 2_000_000_000
	// SystemNodeCriticalPriority is system-node-critical's value.
	SystemNodeCriticalPriority int32 = SystemCriticalPriority + 1000
	// HighestUserDefinablePriority is the largest value of a user class.
	HighestUserDefinablePriority int32 = 1_000_000_000
	// DefaultPriority is a pod's priority when it names no class and no
	// class is the global default.
	DefaultPriority int32 = 0
)

// SystemPriorityClasses returns fresh system-node-critical and
// system-cluster-critical PriorityClass objects, for the API server to
// create on first start. Priority knows them even before they are stored.
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	return []*schedulingv1.PriorityClass{systemClass(SystemNodeCritical, SystemNodeCriticalPriority,
		"Used for system critical pods that must not be moved from their current node."),
		systemClass(SystemClusterCritical, SystemCriticalPriority,
			"Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.")}
}

func systemClass(name string, value int32, desc string) *schedulingv1.PriorityClass {
	preempt := corev1.PreemptLowerPriority
	return &schedulingv1.PriorityClass{
		TypeMeta:         metav1.TypeMeta{Kind: "PriorityClass", APIVersion: "scheduling.k8s.io/v1"},
		ObjectMeta:       metav1.ObjectMeta{Name: name},
		Value:            value,
		Description:      desc,
		PreemptionPolicy: &preempt,
	}
}

// PriorityClassLister reads PriorityClasses. GetPriorityClass reports a
// missing class with an error for which apierrors.IsNotFound is true.
// Returned objects must not be modified.
type PriorityClassLister interface {
	GetPriorityClass(ctx context.Context, name string) (*schedulingv1.PriorityClass, error)
	ListPriorityClasses(ctx context.Context) ([]*schedulingv1.PriorityClass, error)
}

// Priority resolves a pod's priority from its class, as upstream's
// Priority plugin, and guards global defaults.
//
// Admit (pods, main resource):
//   - CREATE: spec.priorityClassName names a class (404 from the lister →
//     403 `no PriorityClass with name x was found`; the built-in system
//     classes are known even when not stored); an empty name takes the
//     global default class (the one with the lowest value if several),
//     else priority DefaultPriority and preemptionPolicy
//     PreemptLowerPriority. spec.priority and spec.preemptionPolicy are
//     set from it; a pod that already carries a different value is 403.
//   - UPDATE: a priority or preemption policy missing from the new pod is
//     kept from the old one.
//
// Validate (scheduling.k8s.io priorityclasses, CREATE and UPDATE): a class
// with globalDefault true is 403 when another class is already the global
// default.
type Priority struct {
	classes PriorityClassLister
}

var (
	_ MutatingPlugin   = (*Priority)(nil)
	_ ValidatingPlugin = (*Priority)(nil)
)

// NewPriority returns the plugin reading classes through l.
func NewPriority(l PriorityClassLister) *Priority { return &Priority{classes: l} }

// Name implements Plugin.
func (*Priority) Name() string { return PriorityName }

// Admit implements MutatingPlugin.
func (p *Priority) Admit(ctx context.Context, a *Attributes) error {
	if a.Resource.Group != "" || a.Resource.Resource != "pods" || a.Subresource != "" {
		return nil
	}
	switch a.Operation {
	case Create:
		pod, ok := a.Object.(*corev1.Pod)
		if !ok {
			return wrongType(a, a.Object)
		}
		return p.admitCreate(ctx, a, pod)
	case Update:
		pod, ok := a.Object.(*corev1.Pod)
		if !ok {
			return wrongType(a, a.Object)
		}
		old, ok := a.OldObject.(*corev1.Pod)
		if !ok {
			return wrongType(a, a.OldObject)
		}
		if pod.Spec.Priority == nil && old.Spec.Priority != nil {
			v := *old.Spec.Priority
			pod.Spec.Priority = &v
		}
		if pod.Spec.PreemptionPolicy == nil && old.Spec.PreemptionPolicy != nil {
			v := *old.Spec.PreemptionPolicy
			pod.Spec.PreemptionPolicy = &v
		}
	}
	return nil
}

func (p *Priority) admitCreate(ctx context.Context, a *Attributes, pod *corev1.Pod) error {
	var (
		priority int32
		policy   corev1.PreemptionPolicy
	)
	if pod.Spec.PriorityClassName == "" {
		def, err := p.globalDefault(ctx, "")
		if err != nil {
			return err
		}
		priority, policy = DefaultPriority, corev1.PreemptLowerPriority
		if def != nil {
			pod.Spec.PriorityClassName = def.Name
			priority, policy = def.Value, preemptionPolicy(def)
		}
	} else {
		pc, err := p.class(ctx, pod.Spec.PriorityClassName)
		if apierrors.IsNotFound(err) {
			return NewForbidden(a, fmt.Errorf("no PriorityClass with name %v was found", pod.Spec.PriorityClassName))
		}
		if err != nil {
			return apierrors.NewInternalError(fmt.Errorf("get PriorityClass %q: %w", pod.Spec.PriorityClassName, err))
		}
		priority, policy = pc.Value, preemptionPolicy(pc)
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != priority {
		return NewForbidden(a, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, priority))
	}
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != policy {
		return NewForbidden(a, fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, policy))
	}
	pod.Spec.Priority = &priority
	pod.Spec.PreemptionPolicy = &policy
	return nil
}

func preemptionPolicy(pc *schedulingv1.PriorityClass) corev1.PreemptionPolicy {
	if pc.PreemptionPolicy != nil {
		return *pc.PreemptionPolicy
	}
	return corev1.PreemptLowerPriority
}

// class gets a class, falling back to the built-in system classes.
func (p *Priority) class(ctx context.Context, name string) (*schedulingv1.PriorityClass, error) {
	pc, err := p.classes.GetPriorityClass(ctx, name)
	if apierrors.IsNotFound(err) {
		for _, sc := range SystemPriorityClasses() {
			if sc.Name == name {
				return sc, nil
			}
		}
	}
	return pc, err
}

// globalDefault returns the global default class other than except, the
// one with the lowest value when several are; nil when there is none.
func (p *Priority) globalDefault(ctx context.Context, except string) (*schedulingv1.PriorityClass, error) {
	all, err := p.classes.ListPriorityClasses(ctx)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list PriorityClasses: %w", err))
	}
	var def *schedulingv1.PriorityClass
	for _, pc := range all {
		if pc.GlobalDefault && pc.Name != except && (def == nil || pc.Value < def.Value) {
			def = pc
		}
	}
	return def, nil
}

// Validate implements ValidatingPlugin.
func (p *Priority) Validate(ctx context.Context, a *Attributes) error {
	if a.Resource.Group != schedulingv1.GroupName || a.Resource.Resource != "priorityclasses" || a.Subresource != "" {
		return nil
	}
	if a.Operation != Create && a.Operation != Update {
		return nil
	}
	pc, ok := a.Object.(*schedulingv1.PriorityClass)
	if !ok {
		return wrongType(a, a.Object)
	}
	if !pc.GlobalDefault {
		return nil
	}
	def, err := p.globalDefault(ctx, pc.Name)
	if err != nil {
		return err
	}
	if def != nil {
		return NewForbidden(a, fmt.Errorf("PriorityClass %v is already marked as default. Only one default can exist", def.Name))
	}
	return nil
}
