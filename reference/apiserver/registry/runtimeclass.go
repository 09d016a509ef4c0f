package registry

import (
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// runtimeClassStrategy is upstream's RuntimeClass validation
// (pkg/apis/node/validation): the handler is a required DNS-1123 label and
// immutable; overhead.podFixed quantities are not negative;
// scheduling.nodeSelector is a valid label set and scheduling.tolerations
// are valid tolerations.
func runtimeClassStrategy() Strategy {
	return Strategy{
		Validate: func(obj runtime.Object) field.ErrorList {
			return validateRuntimeClass(obj.(*nodev1.RuntimeClass))
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			rc, o := obj.(*nodev1.RuntimeClass), old.(*nodev1.RuntimeClass)
			errs := validateRuntimeClass(rc)
			return append(errs, apivalidation.ValidateImmutableField(rc.Handler, o.Handler, field.NewPath("handler"))...)
		},
	}
}

func validateRuntimeClass(rc *nodev1.RuntimeClass) field.ErrorList {
	var errs field.ErrorList
	hp := field.NewPath("handler")
	if rc.Handler == "" {
		errs = append(errs, field.Required(hp, ""))
	} else {
		for _, msg := range utilvalidation.IsDNS1123Label(rc.Handler) {
			errs = append(errs, field.Invalid(hp, rc.Handler, msg))
		}
	}
	if rc.Overhead != nil {
		op := field.NewPath("overhead", "podFixed")
		for name, q := range rc.Overhead.PodFixed {
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(op.Key(string(name)), q.String(), "must be greater than or equal to 0"))
			}
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
				for _, msg := range utilvalidation.IsQualifiedName(string(name)) {
					errs = append(errs, field.Invalid(op.Key(string(name)), name, msg))
				}
			}
		}
	}
	if s := rc.Scheduling; s != nil {
		sp := field.NewPath("scheduling")
		errs = append(errs, metav1validation.ValidateLabels(s.NodeSelector, sp.Child("nodeSelector"))...)
		errs = append(errs, validateTolerations(s.Tolerations, sp.Child("tolerations"))...)
	}
	return errs
}
