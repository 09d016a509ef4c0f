package scheduler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
)

// schedProfile is one profile as the scheduler runs it: the profile's
// plugins (a spec/framework.Framework, which also runs the scheduling
// cycle) and the extenders that filter, prioritize and bind after them.
type schedProfile struct {
	*framework.Framework
	name      string
	extenders []*extender
	// hooks are the extenders as the cycle's Extender hook.
	hooks []framework.Extender
}

// handle is the spec.SchedulerHandle a profile's plugins get.
type handle struct {
	sched *Scheduler
	prof  *schedProfile
}

func newProfile(s *Scheduler, p spec.Profile, reg *spec.Registry, exts []*extender) (*schedProfile, error) {
	prof := &schedProfile{name: p.SchedulerName, extenders: exts}
	for _, e := range exts {
		prof.hooks = append(prof.hooks, e)
	}
	fw, err := framework.New(p, framework.FromRegistry(reg, &handle{sched: s, prof: prof}))
	if err != nil {
		return nil, err
	}
	prof.Framework = fw
	return prof, nil
}

// pointObserver feeds a profile's extension-point and plugin durations to
// the scheduler's metrics.
type pointObserver struct {
	m       *metrics
	profile string
}

// ExtensionPoint observes scheduler_framework_extension_point_duration_seconds.
func (o pointObserver) ExtensionPoint(point, status string, d time.Duration) {
	o.m.extensionPointDuration.WithLabelValues(point, status, o.profile).Observe(d.Seconds())
}

// Plugin observes scheduler_plugin_execution_duration_seconds.
func (o pointObserver) Plugin(plugin, point string, code spec.Code, d time.Duration) {
	o.m.pluginObserver(plugin, point, code).Observe(d.Seconds())
}

// observer returns the profile's metrics observer.
func (s *Scheduler) observer(prof *schedProfile) pointObserver {
	return pointObserver{m: s.metrics, profile: prof.name}
}

// sampled returns the observer for a cycle's plugin calls: plugins are
// timed in one cycle in ten, as upstream (nil otherwise).
func (s *Scheduler) sampled(prof *schedProfile, sample bool) framework.Observer {
	if !sample {
		return nil
	}
	return s.observer(prof)
}

// Snapshot returns the snapshot of the cycle in progress.
func (h *handle) Snapshot() spec.Snapshot { return h.sched.snap }

// PodDisruptionBudgets returns the PDBs listed for the cycle in progress
// (the scheduling loop lists them before PostFilter runs).
func (h *handle) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget { return h.sched.pdbs }

// Bind binds through pods/binding.
func (h *handle) Bind(ctx context.Context, pod *corev1.Pod, nodeName string) error {
	return h.sched.bindThroughAPI(ctx, pod, nodeName)
}

// Preempt marks and deletes the victims and nominates nodeName.
func (h *handle) Preempt(ctx context.Context, preemptor *corev1.Pod, nodeName string, victims []*corev1.Pod) error {
	return h.sched.preempt(ctx, h.prof, preemptor, nodeName, victims)
}

// RunFilterPlugins runs PreFilter and Filter for one node of snap.
func (h *handle) RunFilterPlugins(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot, nodeName string) *spec.Status {
	if h.prof.Framework == nil {
		return spec.AsStatus(fmt.Errorf("profile %q is still being built: %w", h.prof.name, spec.ErrInvalid))
	}
	return h.prof.RunFilterPlugins(ctx, pod, snap, nodeName)
}
