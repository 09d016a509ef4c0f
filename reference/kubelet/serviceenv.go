package kubelet

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ServiceEnv is the environment the kubelet gives a pod's containers about
// services, as upstream's getServiceEnvVarMap: the "kubernetes" service of
// the default namespace always, and, unless the pod sets
// enableServiceLinks false, every service of its namespace; only services
// with a cluster IP. Each service NAME (upper case, "-" as "_") yields
// NAME_SERVICE_HOST, NAME_SERVICE_PORT (the first port),
// NAME_SERVICE_PORT_PORTNAME for named ports, and Docker's link variables
// NAME_PORT, NAME_PORT_P_PROTO, ..._PROTO, ..._PORT and ..._ADDR. The
// result is sorted by name.
func ServiceEnv(pod *corev1.Pod, services []*corev1.Service) []corev1.EnvVar {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	chosen := map[string]*corev1.Service{}
	for _, s := range services {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		switch {
		case s.Namespace == pod.Namespace && links:
			chosen[s.Name] = s
		case s.Namespace == metav1NamespaceDefault && s.Name == "kubernetes":
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		}
	}
	var out []corev1.EnvVar
	add := func(k, v string) { out = append(out, corev1.EnvVar{Name: k, Value: v}) }
	for _, s := range chosen {
		if len(s.Spec.Ports) == 0 {
			continue
		}
		name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		ip := s.Spec.ClusterIP
		add(name+"_SERVICE_HOST", ip)
		add(name+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				add(name+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port)))
			}
		}
		first := s.Spec.Ports[0]
		add(name+"_PORT", fmt.Sprintf("%s://%s:%d", strings.ToLower(string(protoOf(first))), hostPortJoin(ip), first.Port))
		for _, p := range s.Spec.Ports {
			proto := protoOf(p)
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(string(proto)))
			add(prefix, fmt.Sprintf("%s://%s:%d", strings.ToLower(string(proto)), hostPortJoin(ip), p.Port))
			add(prefix+"_PROTO", strings.ToLower(string(proto)))
			add(prefix+"_PORT", strconv.Itoa(int(p.Port)))
			add(prefix+"_ADDR", ip)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

const metav1NamespaceDefault = "default"

func protoOf(p corev1.ServicePort) corev1.Protocol {
	if p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return p.Protocol
}

// hostPortJoin brackets an IPv6 address for a URL.
func hostPortJoin(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}
