package registry

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
)

// MaxDisruptedPods bounds a budget's status.disruptedPods: past it,
// evictions of the pods it covers are 403 until the disruption controller
// catches up (upstream's MaxDisruptedPodSize).
const MaxDisruptedPods = 2000

// EvictOptions qualify an Evict.
type EvictOptions struct {
	// DryRun is the request's dryRun=All parameter; the Eviction's own
	// deleteOptions.dryRun asks for the same (either suffices, as upstream).
	DryRun bool
	// Admission admits the Eviction (operation CREATE on pods/eviction, as
	// upstream); nil admits it unchecked.
	Admission admission.Interface
}

// Evict evicts the pod namespace/name of r (the pods resource) as ev asks
// (POST pods/eviction): it deletes the pod with ev's deleteOptions unless
// the PodDisruptionBudget covering it forbids it, and takes one disruption
// from that budget.
//
// What happens is decided first (planEviction, allowDisruption: pure) from the
// pod and the budgets read; then, unless it is a dry run, the budget's
// status is written (disruptionsAllowed minus one, the pod in
// disruptedPods) and the pod deleted. A dry run reads, decides and admits
// exactly as the eviction would, and writes nothing.
//
// Errors: 429 TooManyRequests when the budget allows no disruption (or has
// not observed its latest generation), 403 for a budget with a negative
// allowance or too many unconfirmed disruptions, 500 when several budgets
// cover the pod, 422 for a deleteOptions.dryRun other than All, 404 for a
// missing pod.
func (s *Storage) Evict(ctx context.Context, r *Resource, ns, name string, ev *policyv1.Eviction, opts EvictOptions) error {
	delOpts, dry, err := evictionDeleteOptions(ev, opts.DryRun)
	if err != nil {
		return err
	}
	ev.SetGroupVersionKind(policyv1.SchemeGroupVersion.WithKind("Eviction"))
	if err := admitRequest(ctx, opts.Admission, subresourceAttributes(ctx, r, SubEviction, ns, name, ev, dry)); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		obj, err := s.Get(ctx, r, ns, name)
		if err != nil {
			return err
		}
		pod := obj.(*corev1.Pod)
		var budgets []*policyv1.PodDisruptionBudget
		if !disruptsNothing(pod) {
			if budgets, err = s.budgetsCovering(ctx, pod); err != nil {
				return err
			}
		}
		plan, err := planEviction(pod, budgets, delOpts)
		if err != nil {
			return err
		}
		if plan.take {
			if err := s.takeDisruption(ctx, ns, plan.budget, pod.Name, dry); err != nil {
				return err
			}
		}
		_, _, err = s.Delete(ctx, r, ns, name, DeleteOptions{DeleteOptions: plan.deleteOptions})
		if apierrors.IsConflict(err) && plan.precondition {
			// The pod changed since the decision. Pending: decide again.
			// Unready under a budget: it may have become ready; the client
			// retries, as upstream.
			if plan.budget == "" && attempt < 16 {
				continue
			}
			return tooManyEvictions(plan.budget, "The disruption budget %s is still being processed by the server.")
		}
		return err
	}
}

// evictionDeleteOptions are the delete options of ev with the request's dry
// run folded in, and whether the eviction is a dry run.
func evictionDeleteOptions(ev *policyv1.Eviction, requestDryRun bool) (metav1.DeleteOptions, bool, error) {
	var o metav1.DeleteOptions
	if ev.DeleteOptions != nil {
		o = *ev.DeleteOptions.DeepCopy()
	}
	for _, v := range o.DryRun {
		if v != metav1.DryRunAll {
			return o, false, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("DeleteOptions").GroupKind(), "",
				field.ErrorList{field.NotSupported(field.NewPath("dryRun"), o.DryRun, []string{metav1.DryRunAll})})
		}
	}
	if requestDryRun && len(o.DryRun) == 0 {
		o.DryRun = []string{metav1.DryRunAll}
	}
	return o, len(o.DryRun) > 0, nil
}

// budgetsCovering returns the pod's namespace's budgets that select it,
// from a consistent read of the watch cache.
func (s *Storage) budgetsCovering(ctx context.Context, pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	res := s.Table.Lookup(policyv1.GroupName, "v1", "poddisruptionbudgets")
	if res == nil {
		return nil, nil
	}
	if err := s.Cache.WaitFresh(ctx, 0); err != nil {
		return nil, err
	}
	objs, _ := s.Cache.List(res, Filter{Namespace: pod.Namespace})
	all := make([]*policyv1.PodDisruptionBudget, 0, len(objs))
	for _, o := range objs {
		all = append(all, o.(*policyv1.PodDisruptionBudget))
	}
	return coveringBudgets(pod, all), nil
}

// coveringBudgets returns the budgets of budgets that select pod. A budget
// with an empty or invalid selector selects nothing, as upstream.
func coveringBudgets(pod *corev1.Pod, budgets []*policyv1.PodDisruptionBudget) []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, b := range budgets {
		if b.Namespace != pod.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// evictionPlan is what an eviction does, decided from the pod and the
// budgets covering it.
type evictionPlan struct {
	// budget names the budget covering the pod; "" for none (or none
	// consulted).
	budget string
	// take: one disruption is taken from budget before the pod is deleted.
	take bool
	// deleteOptions delete the pod: the Eviction's, plus a resourceVersion
	// precondition when precondition is set.
	deleteOptions metav1.DeleteOptions
	// precondition: the pod is deleted only at the revision the plan was
	// made on (a pending pod must not have started, an unready pod evicted
	// without taking a disruption must not have become ready).
	precondition bool
}

// disruptsNothing: a pod that is pending, finished or being deleted is
// evicted without consulting budgets, as upstream.
func disruptsNothing(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// planEviction decides the eviction of pod, covered by budgets, deleted
// with opts. It changes none of its arguments. As upstream: a pod that
// disrupts nothing is deleted without consulting budgets (a pending one at
// the revision read); several budgets are a 500; an unready pod whose
// budget has its desired healthy pods, or whose budget's
// unhealthyPodEvictionPolicy is AlwaysAllow, is deleted at the revision
// read without taking a disruption; otherwise the budget gives one
// (allowDisruption decides whether it can).
func planEviction(pod *corev1.Pod, budgets []*policyv1.PodDisruptionBudget, opts metav1.DeleteOptions) (evictionPlan, error) {
	p := evictionPlan{deleteOptions: opts}
	withPrecondition := func() {
		if opts.Preconditions != nil && opts.Preconditions.ResourceVersion != nil {
			return // the client's own precondition stands
		}
		p.deleteOptions = *opts.DeepCopy()
		if p.deleteOptions.Preconditions == nil {
			p.deleteOptions.Preconditions = &metav1.Preconditions{}
		}
		rv := pod.ResourceVersion
		p.deleteOptions.Preconditions.ResourceVersion = &rv
		p.precondition = true
	}
	if disruptsNothing(pod) {
		if pod.Status.Phase == corev1.PodPending && pod.DeletionTimestamp == nil {
			withPrecondition()
		}
		return p, nil
	}
	switch len(budgets) {
	case 0:
		return p, nil
	case 1:
	default:
		return p, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}}
	}
	b := budgets[0]
	p.budget = b.Name
	if !podReady(pod) {
		alwaysAllow := b.Spec.UnhealthyPodEvictionPolicy != nil && *b.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow
		if alwaysAllow || (b.Status.DesiredHealthy > 0 && b.Status.CurrentHealthy >= b.Status.DesiredHealthy) {
			withPrecondition()
			return p, nil
		}
	}
	p.take = true
	return p, nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// takeDisruption takes one disruption for the pod from the budget
// namespace/name: on a dry run it only decides (allowDisruption on the
// stored budget), otherwise it writes the budget's status with a
// compare-and-swap, deciding again on every retry.
func (s *Storage) takeDisruption(ctx context.Context, ns, name, pod string, dry bool) error {
	res := s.Table.Lookup(policyv1.GroupName, "v1", "poddisruptionbudgets")
	now := s.now()
	decide := func(cur runtime.Object) (runtime.Object, error) {
		return allowDisruption(cur.(*policyv1.PodDisruptionBudget), pod, now)
	}
	if dry {
		cur, err := s.Get(ctx, res, ns, name)
		if err != nil {
			return err
		}
		_, err = decide(cur)
		return err
	}
	_, _, err := s.Update(ctx, res, ns, name, decide, UpdateOptions{Subresource: SubStatus})
	return err
}

// allowDisruption returns a copy of budget with one disruption taken for
// pod at time now — disruptionsAllowed minus one (the DisruptionAllowed
// condition False at zero) and pod recorded in disruptedPods for the
// disruption controller — or the error that refuses it, as upstream: 429
// when the status does not reflect the latest spec or no disruption is
// allowed, 403 for a negative allowance or more than MaxDisruptedPods
// unconfirmed disruptions. It changes neither argument.
func allowDisruption(budget *policyv1.PodDisruptionBudget, pod string, now metav1.Time) (*policyv1.PodDisruptionBudget, error) {
	st := budget.Status
	switch {
	case st.ObservedGeneration < budget.Generation:
		return nil, tooManyEvictions(budget.Name, "The disruption budget %s is still being processed by the server.")
	case st.DisruptionsAllowed < 0:
		return nil, apierrors.NewForbidden(policyv1.Resource("poddisruptionbudget"), budget.Name, fmt.Errorf("pdb disruptions allowed is negative"))
	case len(st.DisruptedPods) > MaxDisruptedPods:
		return nil, apierrors.NewForbidden(policyv1.Resource("poddisruptionbudget"), budget.Name, fmt.Errorf("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
	case st.DisruptionsAllowed == 0:
		err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause,
			Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", budget.Name, st.DesiredHealthy, st.CurrentHealthy)})
		return nil, err
	}
	out := budget.DeepCopy()
	out.Status.DisruptionsAllowed--
	if out.Status.DisruptionsAllowed == 0 {
		pdbhelper.UpdateDisruptionAllowedCondition(out)
	}
	if out.Status.DisruptedPods == nil {
		out.Status.DisruptedPods = map[string]metav1.Time{}
	}
	out.Status.DisruptedPods[pod] = now
	out.ResourceVersion = ""
	return out, nil
}

// tooManyEvictions is upstream's 429 for an eviction to retry later, with
// a cause naming the budget (format has one %s for it).
func tooManyEvictions(budget, format string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: fmt.Sprintf(format, budget)})
	return err
}
