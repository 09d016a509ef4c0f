package registry

import (
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// DefaultSchedulerName is the schedulerName pods get when they name none.
const DefaultSchedulerName = "default-scheduler"

func namespaceStrategy() Strategy {
	return Strategy{
		NameValid: apivalidation.NameIsDNSLabel,
		PrepareForCreate: func(obj runtime.Object) {
			ns := obj.(*corev1.Namespace)
			ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
			if !hasString(ns.Spec.Finalizers, string(corev1.FinalizerKubernetes)) {
				ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
			}
		},
		Default: func(obj runtime.Object) {
			ns := obj.(*corev1.Namespace)
			if ns.Labels == nil {
				ns.Labels = map[string]string{}
			}
			ns.Labels[corev1.LabelMetadataName] = ns.Name
		},
		// spec.finalizers change only through namespaces/finalize, as
		// upstream.
		PrepareForUpdate: func(obj, old runtime.Object) {
			obj.(*corev1.Namespace).Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
		},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
		},
	}
}

func hasString(list []corev1.FinalizerName, s string) bool {
	for _, x := range list {
		if string(x) == s {
			return true
		}
	}
	return false
}

// defaultPodSpec fills the defaults upstream's defaulters give a PodSpec.
func defaultPodSpec(s *corev1.PodSpec) {
	if s.RestartPolicy == "" {
		s.RestartPolicy = corev1.RestartPolicyAlways
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = corev1.DNSClusterFirst
	}
	if s.SchedulerName == "" {
		s.SchedulerName = DefaultSchedulerName
	}
	if s.TerminationGracePeriodSeconds == nil {
		s.TerminationGracePeriodSeconds = ptr.To[int64](corev1.DefaultTerminationGracePeriodSeconds)
	}
	if s.SecurityContext == nil {
		s.SecurityContext = &corev1.PodSecurityContext{}
	}
	if s.EnableServiceLinks == nil {
		s.EnableServiceLinks = ptr.To(corev1.DefaultEnableServiceLinks)
	}
	if s.ServiceAccountName == "" && s.DeprecatedServiceAccount != "" {
		s.ServiceAccountName = s.DeprecatedServiceAccount
	}
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			c := &cs[i]
			if c.TerminationMessagePath == "" {
				c.TerminationMessagePath = corev1.TerminationMessagePathDefault
			}
			if c.TerminationMessagePolicy == "" {
				c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
			}
			if c.ImagePullPolicy == "" {
				c.ImagePullPolicy = corev1.PullIfNotPresent
				if img := c.Image; len(img) > 7 && img[len(img)-7:] == ":latest" || !hasTag(img) {
					c.ImagePullPolicy = corev1.PullAlways
				}
			}
			for j := range c.Ports {
				if c.Ports[j].Protocol == "" {
					c.Ports[j].Protocol = corev1.ProtocolTCP
				}
			}
		}
	}
}

// hasTag reports whether an image reference names a tag or digest.
func hasTag(img string) bool {
	for i := len(img) - 1; i >= 0; i-- {
		switch img[i] {
		case ':', '@':
			return true
		case '/':
			return false
		}
	}
	return false
}

func validatePodSpec(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	names := sets.New[string]()
	for _, set := range []struct {
		name string
		cs   []corev1.Container
	}{{"initContainers", s.InitContainers}, {"containers", s.Containers}} {
		for i, c := range set.cs {
			cp := p.Child(set.name).Index(i)
			if c.Name == "" {
				errs = append(errs, field.Required(cp.Child("name"), ""))
			} else {
				for _, msg := range utilvalidation.IsDNS1123Label(c.Name) {
					errs = append(errs, field.Invalid(cp.Child("name"), c.Name, msg))
				}
				if names.Has(c.Name) {
					errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
				}
				names.Insert(c.Name)
			}
			if c.Image == "" {
				errs = append(errs, field.Required(cp.Child("image"), ""))
			}
			errs = append(errs, validateResources(c.Resources, cp.Child("resources"))...)
			for j, port := range c.Ports {
				for _, msg := range utilvalidation.IsValidPortNum(int(port.ContainerPort)) {
					errs = append(errs, field.Invalid(cp.Child("ports").Index(j).Child("containerPort"), port.ContainerPort, msg))
				}
			}
		}
	}
	errs = append(errs, validatePodScheduling(s, p)...)
	switch s.RestartPolicy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), s.RestartPolicy,
			[]string{string(corev1.RestartPolicyAlways), string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	}
	return errs
}

// defaultPodRequests gives every container (and init container) of a pod a
// request for each resource it limits but does not request, equal to the
// limit, as upstream's Pod defaulting does (pods only, not templates), so
// that schedulers see what the container may use.
func defaultPodRequests(pod *corev1.Pod) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			r := &cs[i].Resources
			for name, lim := range r.Limits {
				if _, ok := r.Requests[name]; !ok {
					if r.Requests == nil {
						r.Requests = corev1.ResourceList{}
					}
					r.Requests[name] = lim.DeepCopy()
				}
			}
		}
	}
}

// validateResources: quantities are not negative and no request exceeds
// its limit, with upstream's fields and messages.
func validateResources(r corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, set := range []struct {
		name string
		l    corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for _, name := range slices.Sorted(maps.Keys(set.l)) {
			if q := set.l[name]; q.Sign() < 0 {
				errs = append(errs, field.Invalid(p.Child(set.name).Key(string(name)), q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests"), req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return errs
}

func podStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			pod := obj.(*corev1.Pod)
			defaultPodSpec(&pod.Spec)
			defaultPodRequests(pod)
		},
		PrepareForCreate: func(obj runtime.Object) {
			pod := obj.(*corev1.Pod)
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: podQOS(pod)}
		},
		Validate: func(obj runtime.Object) field.ErrorList {
			pod := obj.(*corev1.Pod)
			return append(validatePodSpec(&pod.Spec, field.NewPath("spec")), validatePodCreateGates(pod)...)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
			if len(pod.Spec.Containers) != len(oldPod.Spec.Containers) {
				return field.ErrorList{field.Forbidden(field.NewPath("spec", "containers"), "pod updates may not add or remove containers")}
			}
			if errs := validatePodGatesUpdate(pod, oldPod); len(errs) > 0 {
				return errs
			}
			// Like upstream: only images, activeDeadlineSeconds, tolerations
			// (additions) and scheduling gates may change.
			a, b := pod.Spec.DeepCopy(), oldPod.Spec.DeepCopy()
			for i := range a.Containers {
				if i < len(b.Containers) {
					a.Containers[i].Image = b.Containers[i].Image
				}
			}
			for i := range a.InitContainers {
				if i < len(b.InitContainers) {
					a.InitContainers[i].Image = b.InitContainers[i].Image
				}
			}
			a.ActiveDeadlineSeconds, a.Tolerations, a.SchedulingGates = b.ActiveDeadlineSeconds, b.Tolerations, b.SchedulingGates
			if !semanticEqual(a, b) {
				return field.ErrorList{field.Forbidden(field.NewPath("spec"), "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")}
			}
			return nil
		},
		Fields: func(obj runtime.Object) fields.Set {
			pod := obj.(*corev1.Pod)
			return fields.Set{
				"spec.nodeName":            pod.Spec.NodeName,
				"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
				"spec.schedulerName":       pod.Spec.SchedulerName,
				"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
				"spec.hostNetwork":         fmt.Sprint(pod.Spec.HostNetwork),
				"status.phase":             string(pod.Status.Phase),
				"status.podIP":             pod.Status.PodIP,
				"status.nominatedNodeName": pod.Status.NominatedNodeName,
			}
		},
	}
}

// podQOS computes the pod's QoS class from its containers' resources.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits, guaranteed := 0, 0, true
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			if hasReq && !req.IsZero() {
				requests++
			}
			if hasLim && !lim.IsZero() {
				limits++
				if hasReq && req.Cmp(lim) != 0 {
					guaranteed = false
				}
			} else {
				guaranteed = false
			}
		}
	}
	switch {
	case requests == 0 && limits == 0:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func nodeStrategy() Strategy {
	return Strategy{
		Validate: validateNodeTaints,
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": fmt.Sprint(obj.(*corev1.Node).Spec.Unschedulable)}
		},
	}
}

func secretStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			if s := obj.(*corev1.Secret); s.Type == "" {
				s.Type = corev1.SecretTypeOpaque
			}
		},
		Validate: func(obj runtime.Object) field.ErrorList {
			var errs field.ErrorList
			for k := range obj.(*corev1.Secret).Data {
				for _, msg := range utilvalidation.IsConfigMapKey(k) {
					errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, msg))
				}
			}
			return errs
		},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"type": string(obj.(*corev1.Secret).Type)}
		},
	}
}

func eventStrategy() Strategy {
	return Strategy{
		Fields: func(obj runtime.Object) fields.Set {
			ev := obj.(*corev1.Event)
			source := ev.Source.Component
			if source == "" {
				source = ev.ReportingController
			}
			return fields.Set{
				"involvedObject.kind":            ev.InvolvedObject.Kind,
				"involvedObject.namespace":       ev.InvolvedObject.Namespace,
				"involvedObject.name":            ev.InvolvedObject.Name,
				"involvedObject.uid":             string(ev.InvolvedObject.UID),
				"involvedObject.apiVersion":      ev.InvolvedObject.APIVersion,
				"involvedObject.resourceVersion": ev.InvolvedObject.ResourceVersion,
				"involvedObject.fieldPath":       ev.InvolvedObject.FieldPath,
				"reason":                         ev.Reason,
				"reportingComponent":             ev.ReportingController,
				"source":                         source,
				"type":                           ev.Type,
			}
		},
	}
}

func serviceStrategy() Strategy {
	return Strategy{
		NameValid: apivalidation.NameIsDNS1035Label,
		Default: func(obj runtime.Object) {
			svc := obj.(*corev1.Service)
			if svc.Spec.Type == "" {
				svc.Spec.Type = corev1.ServiceTypeClusterIP
			}
			if svc.Spec.SessionAffinity == "" {
				svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
			}
			if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.InternalTrafficPolicy == nil {
				svc.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
			}
			if (svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) && svc.Spec.ExternalTrafficPolicy == "" {
				svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			}
			for i := range svc.Spec.Ports {
				p := &svc.Spec.Ports[i]
				if p.Protocol == "" {
					p.Protocol = corev1.ProtocolTCP
				}
				if p.TargetPort == (intstr.IntOrString{}) {
					p.TargetPort = intstr.FromInt32(p.Port)
				}
			}
		},
		PrepareForCreate: func(obj runtime.Object) { obj.(*corev1.Service).Status = corev1.ServiceStatus{} },
		PrepareForUpdate: func(obj, old runtime.Object) {
			// Like upstream's patchAllocatedValues: an update that leaves out
			// the allocated IPs and node ports keeps them.
			svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
			if svc.Spec.Type == oldSvc.Spec.Type && svc.Spec.ClusterIP == "" && oldSvc.Spec.ClusterIP != "" {
				svc.Spec.ClusterIP, svc.Spec.ClusterIPs = oldSvc.Spec.ClusterIP, oldSvc.Spec.ClusterIPs
				svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = oldSvc.Spec.IPFamilies, oldSvc.Spec.IPFamilyPolicy
			}
			if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
				for i := range svc.Spec.Ports {
					p := &svc.Spec.Ports[i]
					for _, op := range oldSvc.Spec.Ports {
						if p.NodePort == 0 && op.NodePort != 0 && op.Port == p.Port && op.Protocol == p.Protocol {
							p.NodePort = op.NodePort
						}
					}
				}
			}
		},
		Validate: func(obj runtime.Object) field.ErrorList {
			svc := obj.(*corev1.Service)
			var errs field.ErrorList
			sp := field.NewPath("spec")
			switch svc.Spec.Type {
			case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
				if len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP != corev1.ClusterIPNone {
					errs = append(errs, field.Required(sp.Child("ports"), ""))
				}
			case corev1.ServiceTypeExternalName:
				if svc.Spec.ExternalName == "" {
					errs = append(errs, field.Required(sp.Child("externalName"), ""))
				}
			default:
				errs = append(errs, field.NotSupported(sp.Child("type"), svc.Spec.Type, []string{"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"}))
			}
			names := sets.New[string]()
			for i, p := range svc.Spec.Ports {
				pp := sp.Child("ports").Index(i)
				for _, msg := range utilvalidation.IsValidPortNum(int(p.Port)) {
					errs = append(errs, field.Invalid(pp.Child("port"), p.Port, msg))
				}
				if len(svc.Spec.Ports) > 1 && p.Name == "" {
					errs = append(errs, field.Required(pp.Child("name"), ""))
				}
				if names.Has(p.Name) && p.Name != "" {
					errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
				}
				names.Insert(p.Name)
				switch p.Protocol {
				case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
				default:
					errs = append(errs, field.NotSupported(pp.Child("protocol"), p.Protocol, []string{"SCTP", "TCP", "UDP"}))
				}
				if p.NodePort != 0 && svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
					errs = append(errs, field.Forbidden(pp.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
				}
			}
			return errs
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
			if oldSvc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != oldSvc.Spec.ClusterIP && svc.Spec.Type == oldSvc.Spec.Type {
				return field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, "may not change once set")}
			}
			return nil
		},
		Fields: func(obj runtime.Object) fields.Set {
			svc := obj.(*corev1.Service)
			return fields.Set{"spec.clusterIP": svc.Spec.ClusterIP, "spec.type": string(svc.Spec.Type)}
		},
	}
}

// validateSelectorTemplate checks a workload's selector against its pod
// template's labels, and the template itself.
func validateSelectorTemplate(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, replicas *int32) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("spec")
	if sel == nil {
		errs = append(errs, field.Required(sp.Child("selector"), ""))
	} else if s, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		errs = append(errs, field.Invalid(sp.Child("selector"), sel, err.Error()))
	} else if s.Empty() {
		errs = append(errs, field.Invalid(sp.Child("selector"), sel, "empty selector is invalid for deployment"))
	} else if !s.Matches(labels.Set(tmpl.Labels)) {
		errs = append(errs, field.Invalid(sp.Child("template", "metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`"))
	}
	if replicas != nil && *replicas < 0 {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*replicas), sp.Child("replicas"))...)
	}
	errs = append(errs, validatePodSpec(&tmpl.Spec, sp.Child("template", "spec"))...)
	return errs
}

func immutableSelector(obj, old *metav1.LabelSelector) field.ErrorList {
	return apivalidation.ValidateImmutableField(obj, old, field.NewPath("spec", "selector"))
}

func deploymentStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			d := obj.(*appsv1.Deployment)
			if d.Spec.Replicas == nil {
				d.Spec.Replicas = ptr.To[int32](1)
			}
			if d.Spec.Strategy.Type == "" {
				d.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
			}
			if d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
				if d.Spec.Strategy.RollingUpdate == nil {
					d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
				}
				if d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil {
					d.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromString("25%"))
				}
				if d.Spec.Strategy.RollingUpdate.MaxSurge == nil {
					d.Spec.Strategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromString("25%"))
				}
			}
			if d.Spec.RevisionHistoryLimit == nil {
				d.Spec.RevisionHistoryLimit = ptr.To[int32](10)
			}
			if d.Spec.ProgressDeadlineSeconds == nil {
				d.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
			}
			defaultPodSpec(&d.Spec.Template.Spec)
		},
		PrepareForCreate: func(obj runtime.Object) { obj.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{} },
		Validate: func(obj runtime.Object) field.ErrorList {
			d := obj.(*appsv1.Deployment)
			return validateSelectorTemplate(d.Spec.Selector, &d.Spec.Template, d.Spec.Replicas)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return immutableSelector(obj.(*appsv1.Deployment).Spec.Selector, old.(*appsv1.Deployment).Spec.Selector)
		},
	}
}

func replicaSetStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			rs := obj.(*appsv1.ReplicaSet)
			if rs.Spec.Replicas == nil {
				rs.Spec.Replicas = ptr.To[int32](1)
			}
			defaultPodSpec(&rs.Spec.Template.Spec)
		},
		PrepareForCreate: func(obj runtime.Object) { obj.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{} },
		Validate: func(obj runtime.Object) field.ErrorList {
			rs := obj.(*appsv1.ReplicaSet)
			return validateSelectorTemplate(rs.Spec.Selector, &rs.Spec.Template, rs.Spec.Replicas)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return immutableSelector(obj.(*appsv1.ReplicaSet).Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector)
		},
	}
}

func daemonSetStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			ds := obj.(*appsv1.DaemonSet)
			if ds.Spec.UpdateStrategy.Type == "" {
				ds.Spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
			}
			if ds.Spec.RevisionHistoryLimit == nil {
				ds.Spec.RevisionHistoryLimit = ptr.To[int32](10)
			}
			defaultPodSpec(&ds.Spec.Template.Spec)
		},
		PrepareForCreate: func(obj runtime.Object) { obj.(*appsv1.DaemonSet).Status = appsv1.DaemonSetStatus{} },
		Validate: func(obj runtime.Object) field.ErrorList {
			ds := obj.(*appsv1.DaemonSet)
			return validateSelectorTemplate(ds.Spec.Selector, &ds.Spec.Template, nil)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return immutableSelector(obj.(*appsv1.DaemonSet).Spec.Selector, old.(*appsv1.DaemonSet).Spec.Selector)
		},
	}
}

func statefulSetStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			s := obj.(*appsv1.StatefulSet)
			if s.Spec.Replicas == nil {
				s.Spec.Replicas = ptr.To[int32](1)
			}
			if s.Spec.PodManagementPolicy == "" {
				s.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
			}
			if s.Spec.UpdateStrategy.Type == "" {
				s.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
			}
			if s.Spec.RevisionHistoryLimit == nil {
				s.Spec.RevisionHistoryLimit = ptr.To[int32](10)
			}
			defaultPodSpec(&s.Spec.Template.Spec)
		},
		PrepareForCreate: func(obj runtime.Object) { obj.(*appsv1.StatefulSet).Status = appsv1.StatefulSetStatus{} },
		Validate: func(obj runtime.Object) field.ErrorList {
			s := obj.(*appsv1.StatefulSet)
			return validateSelectorTemplate(s.Spec.Selector, &s.Spec.Template, s.Spec.Replicas)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return immutableSelector(obj.(*appsv1.StatefulSet).Spec.Selector, old.(*appsv1.StatefulSet).Spec.Selector)
		},
	}
}

func jobStrategy() Strategy {
	return Strategy{
		Default: func(obj runtime.Object) {
			j := obj.(*batchv1.Job)
			if j.Spec.Completions == nil && j.Spec.Parallelism == nil {
				j.Spec.Completions = ptr.To[int32](1)
			}
			if j.Spec.Parallelism == nil {
				j.Spec.Parallelism = ptr.To[int32](1)
			}
			if j.Spec.BackoffLimit == nil {
				j.Spec.BackoffLimit = ptr.To[int32](6)
			}
			if j.Spec.CompletionMode == nil {
				j.Spec.CompletionMode = ptr.To(batchv1.NonIndexedCompletion)
			}
			if j.Spec.Suspend == nil {
				j.Spec.Suspend = ptr.To(false)
			}
			// Like upstream, the selector is generated from the uid in
			// PrepareForCreate, and the template gets the matching labels.
			defaultPodSpec(&j.Spec.Template.Spec)
		},
		PrepareForCreate: func(obj runtime.Object) {
			j := obj.(*batchv1.Job)
			j.Status = batchv1.JobStatus{}
			if j.Spec.ManualSelector == nil || !*j.Spec.ManualSelector {
				uid := string(j.UID)
				if j.Spec.Template.Labels == nil {
					j.Spec.Template.Labels = map[string]string{}
				}
				j.Spec.Template.Labels[batchv1.ControllerUidLabel] = uid
				j.Spec.Template.Labels[batchv1.JobNameLabel] = j.Name
				j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: uid}}
			}
		},
		Validate: func(obj runtime.Object) field.ErrorList {
			j := obj.(*batchv1.Job)
			errs := validatePodSpec(&j.Spec.Template.Spec, field.NewPath("spec", "template", "spec"))
			if rp := j.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
				errs = append(errs, field.NotSupported(field.NewPath("spec", "template", "spec", "restartPolicy"), rp, []string{"OnFailure", "Never"}))
			}
			return errs
		},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.successful": fmt.Sprint(obj.(*batchv1.Job).Status.Succeeded)}
		},
	}
}
