// Package endpointslice is the "endpointslice" controller: for every
// Service with a selector (not ExternalName) it keeps EndpointSlices
// (discovery.k8s.io/v1) listing the pods the selector matches that have an
// IP, with upstream's ready/serving/terminating conditions, target ports
// resolved per pod (named ports through the pod's container ports), at
// most MaxEndpointsPerSlice endpoints per slice, the labels
// kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by:
// endpointslice-controller.k8s.io, and the Service as controller owner.
// A Service without endpoints gets one empty placeholder slice, as
// upstream.
//
// Desired (which endpoints, grouped by address type and ports) and Plan
// (which slices to create, update and delete, keeping endpoints in the
// slice they are in) are pure; Controller is the client-go edge.
package endpointslice

import (
	"fmt"
	"maps"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

const (
	// Name is the controller's name in --controllers.
	Name = "endpointslice"
	// ControllerName is the managed-by label's value on the slices this
	// controller owns.
	ControllerName = "endpointslice-controller.k8s.io"
	// MaxEndpointsPerSlice is upstream's --max-endpoints-per-slice default.
	MaxEndpointsPerSlice = 100
	// Workers is upstream's --concurrent-service-endpoint-syncs default.
	Workers = 5
)

// group is the key endpoints are grouped by: a slice holds one address
// type and one set of ports.
type group struct {
	addressType discoveryv1.AddressType
	ports       string // canonical form of the ports
}

// Group is a set of endpoints sharing an address type and ports.
type Group struct {
	// AddressType is IPv4 or IPv6.
	AddressType discoveryv1.AddressType
	// Ports are the resolved ports of these endpoints.
	Ports []discoveryv1.EndpointPort
	// Endpoints are sorted by target pod name.
	Endpoints []discoveryv1.Endpoint
}

// Desired returns svc's endpoints from pods (any pods of its namespace;
// the selector is applied here), grouped by address type and resolved
// ports, groups in a stable order. Nil for a Service without a selector or
// of type ExternalName (their endpoints are not this controller's).
func Desired(svc *corev1.Service, pods []*corev1.Pod) []Group {
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	families := map[discoveryv1.AddressType]bool{}
	for _, f := range svc.Spec.IPFamilies {
		families[discoveryv1.AddressType(f)] = true
	}
	if len(families) == 0 {
		families[discoveryv1.AddressTypeIPv4] = true
		if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil && ip.To4() == nil {
			families = map[discoveryv1.AddressType]bool{discoveryv1.AddressTypeIPv6: true}
		}
	}
	groups := map[group]*Group{}
	for _, p := range pods {
		if p.Namespace != svc.Namespace || !sel.Matches(labels.Set(p.Labels)) || !inEndpoints(p) {
			continue
		}
		ports := Ports(svc, p)
		for _, ip := range podIPs(p) {
			at := discoveryv1.AddressTypeIPv4
			if parsed := net.ParseIP(ip); parsed == nil {
				continue
			} else if parsed.To4() == nil {
				at = discoveryv1.AddressTypeIPv6
			}
			if !families[at] {
				continue
			}
			k := group{at, portsKey(ports)}
			g := groups[k]
			if g == nil {
				g = &Group{AddressType: at, Ports: ports}
				groups[k] = g
			}
			g.Endpoints = append(g.Endpoints, endpoint(svc, p, ip))
		}
	}
	var out []Group
	for _, g := range groups {
		sort.Slice(g.Endpoints, func(i, j int) bool { return g.Endpoints[i].TargetRef.Name < g.Endpoints[j].TargetRef.Name })
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AddressType != out[j].AddressType {
			return out[i].AddressType < out[j].AddressType
		}
		return portsKey(out[i].Ports) < portsKey(out[j].Ports)
	})
	return out
}

// inEndpoints is upstream's ShouldPodBeInEndpoints with terminating pods
// included: it needs an IP, and a pod that will not run again (Failed or
// Succeeded under restartPolicy Never, Succeeded under OnFailure) is out.
func inEndpoints(p *corev1.Pod) bool {
	if len(podIPs(p)) == 0 {
		return false
	}
	switch p.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded
	case corev1.RestartPolicyOnFailure:
		return p.Status.Phase != corev1.PodSucceeded
	}
	return true
}

func podIPs(p *corev1.Pod) []string {
	var out []string
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		out = append(out, p.Status.PodIP)
	}
	return out
}

// endpoint is the pod's endpoint for svc: ready when the pod is ready and
// not terminating, serving when ready, terminating when being deleted;
// publishNotReadyAddresses makes every endpoint ready and serving. The
// hostname is set when the pod's hostname and subdomain name this Service.
func endpoint(svc *corev1.Service, p *corev1.Pod, ip string) discoveryv1.Endpoint {
	terminating := p.DeletionTimestamp != nil
	serving := svc.Spec.PublishNotReadyAddresses || controller.IsPodReady(p)
	ready := serving && (svc.Spec.PublishNotReadyAddresses || !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
	}
	if p.Spec.NodeName != "" {
		n := p.Spec.NodeName
		ep.NodeName = &n
	}
	if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
		h := p.Spec.Hostname
		ep.Hostname = &h
	}
	return ep
}

// Ports resolves svc's ports for pod p: a numeric targetPort is used as
// is (the port itself when unset), a named one is the container port of
// that name and protocol; a name the pod does not define leaves that port
// out for this pod (upstream logs it and does the same).
func Ports(svc *corev1.Service, p *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		port, ok := findPort(p, sp)
		if !ok {
			continue
		}
		name, proto := sp.Name, sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: sp.AppProtocol})
	}
	return out
}

func findPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String:
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				cpProto := cp.Protocol
				if cpProto == "" {
					cpProto = corev1.ProtocolTCP
				}
				if cp.Name == tp.StrVal && cpProto == proto {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.IntVal == 0:
		return sp.Port, true
	default:
		return tp.IntVal, true
	}
}

func portsKey(ports []discoveryv1.EndpointPort) string {
	var parts []string
	for _, p := range ports {
		ap := ""
		if p.AppProtocol != nil {
			ap = *p.AppProtocol
		}
		parts = append(parts, fmt.Sprintf("%s/%s/%d/%s", deref(p.Name), derefProto(p.Protocol), deref32(p.Port), ap))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefProto(p *corev1.Protocol) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// Labels are the labels of svc's slices: the Service's own labels, then
// kubernetes.io/service-name, the managed-by label, and
// service.kubernetes.io/headless for a headless Service.
func Labels(svc *corev1.Service) map[string]string {
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	delete(l, corev1.IsHeadlessService)
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = ControllerName
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	}
	return l
}

// Changes are the slice writes Plan decides.
type Changes struct {
	// Create are new slices (generateName "<service>-").
	Create []*discoveryv1.EndpointSlice
	// Update are changed copies of existing slices.
	Update []*discoveryv1.EndpointSlice
	// Delete are slices no longer needed.
	Delete []*discoveryv1.EndpointSlice
}

// Plan turns the desired groups into writes against svc's existing
// slices (those with its service-name label managed by this controller):
// an endpoint stays in the slice it is in; new endpoints fill slices of
// their group with room, then new slices of at most max endpoints; slices
// left empty are deleted; a Service without endpoints keeps exactly one
// empty placeholder slice.
func Plan(svc *corev1.Service, desired []Group, existing []*discoveryv1.EndpointSlice, max int) Changes {
	var ch Changes
	lbls := Labels(svc)
	owner := controllerRef(svc)
	used := map[string]bool{} // existing slices kept (by name)
	isPlaceholder := func(s *discoveryv1.EndpointSlice) bool { return len(s.Endpoints) == 0 && len(s.Ports) == 0 }
	for _, g := range desired {
		want := map[string]discoveryv1.Endpoint{}
		for _, ep := range g.Endpoints {
			want[epKey(ep)] = ep
		}
		placed := map[string]bool{}
		var room []*discoveryv1.EndpointSlice
		for _, s := range existing {
			if used[s.Name] || s.AddressType != g.AddressType || portsKey(s.Ports) != portsKey(g.Ports) || isPlaceholder(s) {
				continue
			}
			c := s.DeepCopy()
			var eps []discoveryv1.Endpoint
			for _, ep := range s.Endpoints {
				k := epKey(ep)
				if d, ok := want[k]; ok && !placed[k] && len(eps) < max {
					eps = append(eps, d)
					placed[k] = true
				}
			}
			if len(eps) == 0 {
				continue // deleted below unless reused
			}
			c.Endpoints = eps
			used[s.Name] = true
			room = append(room, c)
		}
		var rest []discoveryv1.Endpoint
		for _, ep := range g.Endpoints {
			if !placed[epKey(ep)] {
				rest = append(rest, ep)
			}
		}
		for _, c := range room {
			for len(rest) > 0 && len(c.Endpoints) < max {
				c.Endpoints = append(c.Endpoints, rest[0])
				rest = rest[1:]
			}
		}
		for len(rest) > 0 {
			n := min(len(rest), max)
			s := newSlice(svc, g.AddressType, g.Ports, lbls, owner)
			s.Endpoints = append([]discoveryv1.Endpoint(nil), rest[:n]...)
			rest = rest[n:]
			ch.Create = append(ch.Create, s)
		}
		for _, c := range room {
			sortEndpoints(c.Endpoints)
			orig := findSlice(existing, c.Name)
			c.Labels = mergeLabels(c.Labels, lbls)
			if !apiequality.Semantic.DeepEqual(orig.Endpoints, c.Endpoints) || !apiequality.Semantic.DeepEqual(orig.Labels, c.Labels) {
				ch.Update = append(ch.Update, c)
			}
		}
	}
	if len(desired) == 0 {
		var keep *discoveryv1.EndpointSlice
		for _, s := range existing {
			if isPlaceholder(s) {
				keep = s
				break
			}
		}
		if keep == nil {
			ch.Create = append(ch.Create, newSlice(svc, addressType(svc), nil, lbls, owner))
		} else {
			used[keep.Name] = true
		}
	}
	for _, s := range existing {
		if !used[s.Name] {
			ch.Delete = append(ch.Delete, s)
		}
	}
	return ch
}

func addressType(svc *corev1.Service) discoveryv1.AddressType {
	if len(svc.Spec.IPFamilies) > 0 {
		return discoveryv1.AddressType(svc.Spec.IPFamilies[0])
	}
	return discoveryv1.AddressTypeIPv4
}

func findSlice(ss []*discoveryv1.EndpointSlice, name string) *discoveryv1.EndpointSlice {
	for _, s := range ss {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// mergeLabels sets want over have, keeping labels others added.
func mergeLabels(have, want map[string]string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}

func sortEndpoints(eps []discoveryv1.Endpoint) {
	sort.SliceStable(eps, func(i, j int) bool { return epKey(eps[i]) < epKey(eps[j]) })
}

// epKey identifies an endpoint: its pod and address.
func epKey(ep discoveryv1.Endpoint) string {
	name := ""
	if ep.TargetRef != nil {
		name = ep.TargetRef.Name
	}
	return name + "|" + strings.Join(ep.Addresses, ",")
}

func controllerRef(svc *corev1.Service) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID, Controller: &t, BlockOwnerDeletion: &t}
}

func newSlice(svc *corev1.Service, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, lbls map[string]string, owner metav1.OwnerReference) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{GenerateName: svc.Name + "-", Namespace: svc.Namespace, Labels: maps.Clone(lbls),
			OwnerReferences: []metav1.OwnerReference{owner}},
		AddressType: at,
		Ports:       ports,
	}
}
