package apiserver

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// printer renders one kind as table rows: its columns (priority 1 columns
// are those kubectl shows only with -o wide) and the cells of one object.
type printer struct {
	columns []metav1.TableColumnDefinition
	cells   func(obj runtime.Object) []any
}

func col(name, typ, desc string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: desc}
}

func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition { c.Priority = 1; return c }

var nameCol = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: "Name must be unique within a namespace."}
var ageCol = col("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.")

// age renders a creation timestamp as kubectl users know it ("5m").
func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

var printers = map[string]printer{
	"/pods": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
			col("Status", "string", "The aggregate status of the containers in this pod."), col("Restarts", "string", "The number of times the containers in this pod have been restarted."),
			ageCol, wide(col("IP", "string", "IP address allocated to the pod.")), wide(col("Node", "string", "Name of the Node this pod is assigned to.")),
			wide(col("Nominated Node", "string", "Name of the node that the pod has been nominated for.")), wide(col("Readiness Gates", "string", "Pod readiness gates."))},
		cells: func(o runtime.Object) []any {
			p := o.(*corev1.Pod)
			ready, restarts := 0, int32(0)
			reason := string(p.Status.Phase)
			if p.Status.Reason != "" {
				reason = p.Status.Reason
			}
			for _, cs := range p.Status.ContainerStatuses {
				restarts += cs.RestartCount
				if cs.Ready && cs.State.Running != nil {
					ready++
				}
				if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
					reason = cs.State.Waiting.Reason
				} else if cs.State.Terminated != nil && cs.State.Terminated.Reason != "" {
					reason = cs.State.Terminated.Reason
				}
			}
			if p.DeletionTimestamp != nil {
				reason = "Terminating"
			}
			gates := "<none>"
			if len(p.Spec.ReadinessGates) > 0 {
				gates = fmt.Sprintf("0/%d", len(p.Spec.ReadinessGates))
			}
			return []any{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), reason, fmt.Sprint(restarts), age(p.CreationTimestamp),
				orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName), gates}
		},
	},
	"/nodes": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Status", "string", "The status of the node"), col("Roles", "string", "The roles of the node"),
			ageCol, col("Version", "string", "Kubelet Version reported by the node."),
			wide(col("Internal-IP", "string", "Internal IP.")), wide(col("External-IP", "string", "External IP.")),
			wide(col("OS-Image", "string", "OS image.")), wide(col("Kernel-Version", "string", "Kernel version.")), wide(col("Container-Runtime", "string", "Container runtime."))},
		cells: func(o runtime.Object) []any {
			n := o.(*corev1.Node)
			status := "Unknown"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					status = "NotReady"
					if c.Status == corev1.ConditionTrue {
						status = "Ready"
					}
				}
			}
			if n.Spec.Unschedulable {
				status += ",SchedulingDisabled"
			}
			var roles []string
			for k := range n.Labels {
				if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
					roles = append(roles, r)
				}
			}
			sort.Strings(roles)
			internal, external := "<none>", "<none>"
			for _, a := range n.Status.Addresses {
				switch a.Type {
				case corev1.NodeInternalIP:
					internal = a.Address
				case corev1.NodeExternalIP:
					external = a.Address
				}
			}
			info := n.Status.NodeInfo
			return []any{n.Name, status, orNone(strings.Join(roles, ",")), age(n.CreationTimestamp), info.KubeletVersion,
				internal, external, orNone(info.OSImage), orNone(info.KernelVersion), orNone(info.ContainerRuntimeVersion)}
		},
	},
	"/services": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Type", "string", "The type of the service."), col("Cluster-IP", "string", "The IP address of the service."),
			col("External-IP", "string", "The external IP of the service."), col("Port(s)", "string", "The ports of the service."), ageCol,
			wide(col("Selector", "string", "Route service traffic to pods with label keys and values matching this selector."))},
		cells: func(o runtime.Object) []any {
			s := o.(*corev1.Service)
			var ports []string
			for _, p := range s.Spec.Ports {
				if p.NodePort != 0 {
					ports = append(ports, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
				} else {
					ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
				}
			}
			ext := "<none>"
			if len(s.Spec.ExternalIPs) > 0 {
				ext = strings.Join(s.Spec.ExternalIPs, ",")
			} else if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				ext = "<pending>"
			} else if s.Spec.Type == corev1.ServiceTypeExternalName {
				ext = s.Spec.ExternalName
			}
			return []any{s.Name, string(s.Spec.Type), orNone(s.Spec.ClusterIP), ext, orNone(strings.Join(ports, ",")), age(s.CreationTimestamp), selectorString(s.Spec.Selector)}
		},
	},
	"apps/deployments": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Ready", "string", "Number of the pod with ready state"), col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
			col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."), ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")), wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", "Label selector for pods."))},
		cells: func(o runtime.Object) []any {
			d := o.(*appsv1.Deployment)
			c, i := containers(d.Spec.Template.Spec)
			return []any{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref32(d.Spec.Replicas)), fmt.Sprint(d.Status.UpdatedReplicas), fmt.Sprint(d.Status.AvailableReplicas),
				age(d.CreationTimestamp), c, i, labelSelectorString(d.Spec.Selector)}
		},
	},
	"apps/replicasets": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Desired", "string", "Number of desired pods."), col("Current", "string", "Number of actual replicas."),
			col("Ready", "string", "The number of ready replicas."), ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")), wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", "Label selector for pods."))},
		cells: func(o runtime.Object) []any {
			r := o.(*appsv1.ReplicaSet)
			c, i := containers(r.Spec.Template.Spec)
			return []any{r.Name, fmt.Sprint(deref32(r.Spec.Replicas)), fmt.Sprint(r.Status.Replicas), fmt.Sprint(r.Status.ReadyReplicas), age(r.CreationTimestamp), c, i, labelSelectorString(r.Spec.Selector)}
		},
	},
	"apps/statefulsets": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Ready", "string", "Number of the pod with ready state"), ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")), wide(col("Images", "string", "Images referenced by each container in the template."))},
		cells: func(o runtime.Object) []any {
			s := o.(*appsv1.StatefulSet)
			c, i := containers(s.Spec.Template.Spec)
			return []any{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, deref32(s.Spec.Replicas)), age(s.CreationTimestamp), c, i}
		},
	},
	"apps/daemonsets": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Desired", "string", "The total number of nodes that should be running the daemon pod."),
			col("Current", "string", "The number of nodes running at least one daemon pod."), col("Ready", "string", "The number of nodes running the daemon pod and ready."),
			col("Up-to-date", "string", "The total number of nodes running updated daemon pods."), col("Available", "string", "The number of nodes with an available daemon pod."),
			col("Node Selector", "string", "Node selector."), ageCol},
		cells: func(o runtime.Object) []any {
			d := o.(*appsv1.DaemonSet)
			return []any{d.Name, fmt.Sprint(d.Status.DesiredNumberScheduled), fmt.Sprint(d.Status.CurrentNumberScheduled), fmt.Sprint(d.Status.NumberReady),
				fmt.Sprint(d.Status.UpdatedNumberScheduled), fmt.Sprint(d.Status.NumberAvailable), selectorString(d.Spec.Template.Spec.NodeSelector), age(d.CreationTimestamp)}
		},
	},
	"/namespaces": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Status", "string", "The status of the namespace"), ageCol},
		cells: func(o runtime.Object) []any {
			n := o.(*corev1.Namespace)
			return []any{n.Name, string(n.Status.Phase), age(n.CreationTimestamp)}
		},
	},
	"/events": {
		columns: []metav1.TableColumnDefinition{col("Last Seen", "string", "Time when last event occurred."), col("Type", "string", "Type of this event."),
			col("Reason", "string", "Reason of this event."), col("Object", "string", "The object this event is about."), col("Message", "string", "A human-readable description of the status of this operation."),
			wide(col("Source", "string", "The component reporting this event.")), wide(col("First Seen", "string", "First time the event was seen.")),
			wide(col("Count", "string", "Number of times this event has occurred.")), wide(nameCol)},
		cells: func(o runtime.Object) []any {
			e := o.(*corev1.Event)
			last := e.LastTimestamp
			if last.IsZero() {
				last = metav1.NewTime(e.EventTime.Time)
			}
			if last.IsZero() {
				last = e.CreationTimestamp
			}
			obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
			src := e.Source.Component
			if src == "" {
				src = e.ReportingController
			}
			return []any{age(last), e.Type, e.Reason, obj, strings.TrimSpace(e.Message), src, age(e.FirstTimestamp), fmt.Sprint(e.Count), e.Name}
		},
	},
	"/endpoints": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Endpoints", "string", "Endpoints of the service"), ageCol},
		cells: func(o runtime.Object) []any {
			e := o.(*corev1.Endpoints)
			var eps []string
			for _, s := range e.Subsets {
				for _, a := range s.Addresses {
					for _, p := range s.Ports {
						eps = append(eps, fmt.Sprintf("%s:%d", a.IP, p.Port))
					}
					if len(s.Ports) == 0 {
						eps = append(eps, a.IP)
					}
				}
			}
			if len(eps) > 3 {
				eps = append(eps[:3], fmt.Sprintf("+ %d more...", len(eps)-3))
			}
			return []any{e.Name, orNone(strings.Join(eps, ",")), age(e.CreationTimestamp)}
		},
	},
	"coordination.k8s.io/leases": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Holder", "string", "The holder of the lease."), ageCol},
		cells: func(o runtime.Object) []any {
			l := o.(*coordinationv1.Lease)
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return []any{l.Name, holder, age(l.CreationTimestamp)}
		},
	},
	"batch/jobs": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Status", "string", "Status of the job."), col("Completions", "string", "The completion status of the job."),
			col("Duration", "string", "Time required to complete the job."), ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")), wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", "Label selector for pods."))},
		cells: func(o runtime.Object) []any {
			j := o.(*batchv1.Job)
			status := "Running"
			for _, c := range j.Status.Conditions {
				if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
					status = string(c.Type)
				}
			}
			if j.Spec.Suspend != nil && *j.Spec.Suspend {
				status = "Suspended"
			}
			completions := fmt.Sprintf("%d/%d", j.Status.Succeeded, deref32(j.Spec.Completions))
			dur := ""
			if j.Status.StartTime != nil {
				end := time.Now()
				if j.Status.CompletionTime != nil {
					end = j.Status.CompletionTime.Time
				}
				dur = duration.HumanDuration(end.Sub(j.Status.StartTime.Time))
			}
			c, i := containers(j.Spec.Template.Spec)
			return []any{j.Name, status, completions, dur, age(j.CreationTimestamp), c, i, labelSelectorString(j.Spec.Selector)}
		},
	},
	"/configmaps": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Data", "string", "Number of data entries."), ageCol},
		cells: func(o runtime.Object) []any {
			c := o.(*corev1.ConfigMap)
			return []any{c.Name, fmt.Sprint(len(c.Data) + len(c.BinaryData)), age(c.CreationTimestamp)}
		},
	},
	"/secrets": {
		columns: []metav1.TableColumnDefinition{nameCol, col("Type", "string", "The type of the secret."), col("Data", "string", "Number of data entries."), ageCol},
		cells: func(o runtime.Object) []any {
			s := o.(*corev1.Secret)
			return []any{s.Name, string(s.Type), fmt.Sprint(len(s.Data)), age(s.CreationTimestamp)}
		},
	},
}

func containers(spec corev1.PodSpec) (string, string) {
	var names, images []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
		images = append(images, c.Image)
	}
	return strings.Join(names, ","), strings.Join(images, ",")
}

func selectorString(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func labelSelectorString(sel *metav1.LabelSelector) string {
	if sel == nil {
		return "<none>"
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "<error>"
	}
	return orNone(s.String())
}

// defaultPrinter is upstream's generic table: name and age.
var defaultPrinter = printer{
	columns: []metav1.TableColumnDefinition{nameCol, ageCol},
	cells: func(o runtime.Object) []any {
		m := objectMetaOf(o)
		return []any{m.GetName(), age(m.GetCreationTimestamp())}
	},
}

// toTable renders obj (an object or a list) as a metav1.Table. The
// includeObject parameter chooses what each row carries: None, Metadata
// (the default: a PartialObjectMetadata) or Object.
func (s *Server) toTable(req *http.Request, res *registry.Resource, obj runtime.Object) (*metav1.Table, error) {
	p, ok := printers[res.Group+"/"+res.Name]
	if !ok {
		p = defaultPrinter
	}
	include := metav1.IncludeMetadata
	switch v := metav1.IncludeObjectPolicy(req.URL.Query().Get("includeObject")); v {
	case "":
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		include = v
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("includeObject %q is not supported", v))
	}
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}, ColumnDefinitions: p.columns, Rows: []metav1.TableRow{}}
	items := []runtime.Object{obj}
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		lm, _ := meta.ListAccessor(obj)
		t.ResourceVersion, t.Continue, t.RemainingItemCount = lm.GetResourceVersion(), lm.GetContinue(), lm.GetRemainingItemCount()
	} else {
		t.ResourceVersion = objectMetaOf(obj).GetResourceVersion()
	}
	for _, it := range items {
		row := metav1.TableRow{Cells: p.cells(it)}
		switch include {
		case metav1.IncludeMetadata:
			row.Object = runtime.RawExtension{Raw: mustJSON(toPartial(it))}
		case metav1.IncludeObject:
			if it.GetObjectKind().GroupVersionKind().Empty() {
				it.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
			}
			row.Object = runtime.RawExtension{Raw: mustJSON(it)}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}
