package registry

import (
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation that kube-apiserver v1.37.2 applies and kubelab lacked, found
// by sending both the same requests; fields and messages are upstream's.

// validatePodScheduling checks what schedulers read: tolerations, the node
// selector, required node affinity, and that a pod with scheduling gates
// is not already bound.
func validatePodScheduling(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	errs := validateTolerations(s.Tolerations, p.Child("tolerations"))
	errs = append(errs, metav1validation.ValidateLabels(s.NodeSelector, p.Child("nodeSelector"))...)
	if a := s.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil &&
		len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0 {
		errs = append(errs, field.Required(p.Child("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"), "must have at least one node selector term"))
	}
	return errs
}

// validateTolerations checks tolerations (a pod's, a RuntimeClass's
// scheduling.tolerations) as upstream does: keys are qualified names, an
// empty key needs Exists, Exists carries no value, known effects only.
func validateTolerations(ts []corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range ts {
		tp := p.Index(i)
		if t.Key != "" {
			for _, msg := range utilvalidation.IsQualifiedName(t.Key) {
				errs = append(errs, field.Invalid(tp.Child("key"), t.Key, msg))
			}
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if t.Key == "" {
				errs = append(errs, field.Invalid(tp.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(tp.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(tp.Child("operator"), t.Operator, []string{string(corev1.TolerationOpEqual), string(corev1.TolerationOpExists)}))
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, field.NotSupported(tp.Child("effect"), t.Effect, []string{string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule), string(corev1.TaintEffectNoExecute)}))
		}
	}
	return errs
}

// validatePodCreateGates: a pod created with scheduling gates may not name
// a node.
func validatePodCreateGates(pod *corev1.Pod) field.ErrorList {
	if len(pod.Spec.SchedulingGates) > 0 && pod.Spec.NodeName != "" {
		return field.ErrorList{field.Forbidden(field.NewPath("spec", "nodeName"), "cannot be set until all schedulingGates have been cleared")}
	}
	return nil
}

// validatePodGatesUpdate: scheduling gates may only be removed.
func validatePodGatesUpdate(pod, old *corev1.Pod) field.ErrorList {
	had := map[string]bool{}
	for _, g := range old.Spec.SchedulingGates {
		had[g.Name] = true
	}
	var errs field.ErrorList
	for i, g := range pod.Spec.SchedulingGates {
		if !had[g.Name] {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "schedulingGates").Index(i).Child("name"),
				fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// roleRefImmutable: a binding's roleRef cannot change.
func roleRefImmutable(r *Resource) {
	r.Strategy.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		var ref, oldRef rbacv1.RoleRef
		switch b := obj.(type) {
		case *rbacv1.RoleBinding:
			ref, oldRef = b.RoleRef, old.(*rbacv1.RoleBinding).RoleRef
		case *rbacv1.ClusterRoleBinding:
			ref, oldRef = b.RoleRef, old.(*rbacv1.ClusterRoleBinding).RoleRef
		}
		return apivalidation.ValidateImmutableField(ref, oldRef, field.NewPath("roleRef"))
	}
}

// Upstream's system priority classes and the highest value a user's may have.
const (
	highestUserPriority       = 1000000000
	systemPriorityClassPrefix = "system-"
)

var systemPriorityClasses = map[string]int32{"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}

// priorityClassStrategy: names with the "system-" prefix are the system
// classes only, with their values; other classes' values are at most 1e9;
// value and preemptionPolicy are immutable.
func priorityClassStrategy() Strategy {
	return Strategy{
		Validate: func(obj runtime.Object) field.ErrorList {
			pc := obj.(*schedulingv1.PriorityClass)
			if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
				v, known := systemPriorityClasses[pc.Name]
				switch {
				case !known:
					return field.ErrorList{field.Forbidden(field.NewPath("metadata", "name"), fmt.Sprintf(
						"priority class names with '%s' prefix are reserved for system use only. error: %s is not a known system priority class", systemPriorityClassPrefix, pc.Name))}
				case v != pc.Value:
					return field.ErrorList{field.Forbidden(field.NewPath("metadata", "name"), fmt.Sprintf(
						"priority class names with '%s' prefix are reserved for system use only. error: value of %s PriorityClass must be %d", systemPriorityClassPrefix, pc.Name, v))}
				}
			} else if pc.Value > highestUserPriority {
				return field.ErrorList{field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %d", highestUserPriority))}
			}
			return nil
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			pc, o := obj.(*schedulingv1.PriorityClass), old.(*schedulingv1.PriorityClass)
			var errs field.ErrorList
			if pc.Value != o.Value {
				errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
			}
			errs = append(errs, apivalidation.ValidateImmutableField(pc.PreemptionPolicy, o.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
			return errs
		},
	}
}

// leaseStrategy: durations and transition counts are not negative.
func leaseStrategy() Strategy {
	return Strategy{
		Validate: func(obj runtime.Object) field.ErrorList {
			s := obj.(*coordinationv1.Lease).Spec
			p := field.NewPath("spec")
			var errs field.ErrorList
			if s.LeaseDurationSeconds != nil && *s.LeaseDurationSeconds <= 0 {
				errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), *s.LeaseDurationSeconds, "must be greater than 0"))
			}
			if s.LeaseTransitions != nil && *s.LeaseTransitions < 0 {
				errs = append(errs, field.Invalid(p.Child("leaseTransitions"), *s.LeaseTransitions, "must be greater than or equal to 0"))
			}
			return errs
		},
	}
}

// validateNodeTaints: taint keys are qualified names and effects are
// known (upstream reports them under metadata.taints).
func validateNodeTaints(obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, t := range obj.(*corev1.Node).Spec.Taints {
		tp := field.NewPath("metadata", "taints").Index(i)
		for _, msg := range utilvalidation.IsQualifiedName(t.Key) {
			errs = append(errs, field.Invalid(tp.Child("key"), t.Key, msg))
		}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		case "":
			errs = append(errs, field.Required(tp.Child("effect"), ""))
		default:
			errs = append(errs, field.NotSupported(tp.Child("effect"), t.Effect, []string{string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule), string(corev1.TaintEffectNoExecute)}))
		}
	}
	return errs
}

// validRBACRules: every rule names verbs; a resource rule names API groups
// and resources; non-resource URLs only in cluster roles and never mixed
// with resources.
func validRBACRules(r *Resource) {
	namespaced := r.Namespaced
	r.Strategy.Validate = func(obj runtime.Object) field.ErrorList {
		var rules []rbacv1.PolicyRule
		switch o := obj.(type) {
		case *rbacv1.Role:
			rules = o.Rules
		case *rbacv1.ClusterRole:
			rules = o.Rules
		}
		var errs field.ErrorList
		for i, rule := range rules {
			p := field.NewPath("rules").Index(i)
			if len(rule.Verbs) == 0 {
				errs = append(errs, field.Required(p.Child("verbs"), ""))
			}
			if len(rule.NonResourceURLs) > 0 {
				if namespaced {
					errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
				}
				if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
					errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
				}
				continue
			}
			if len(rule.APIGroups) == 0 {
				errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
			}
			if len(rule.Resources) == 0 {
				errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
			}
		}
		return errs
	}
}

// validPDB: minAvailable and maxUnavailable are exclusive.
func validPDB(r *Resource) {
	r.Strategy.Validate = func(obj runtime.Object) field.ErrorList {
		spec := obj.(*policyv1.PodDisruptionBudget).Spec
		if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
			return field.ErrorList{field.Invalid(field.NewPath("spec"), spec, "minAvailable and maxUnavailable cannot be both set")}
		}
		return nil
	}
}
