package proxy

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/spec"
)

// Builders for the test objects.

func svc(name string, mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
	}}
	for _, m := range mut {
		m(s)
	}
	return s
}

type epOpt func(*discoveryv1.Endpoint)

func ep(addr, node string, opts ...epOpt) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr}}
	if node != "" {
		e.NodeName = &node
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func conditions(ready, serving, terminating *bool) epOpt {
	return func(e *discoveryv1.Endpoint) {
		e.Conditions = discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}
	}
}

func slice(name, service string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps,
	}
}

func port(name string, number int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Port: &number, Protocol: &proto}
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func sp(name, portName string, port uint16, eps ...spec.Endpoint) spec.ServicePort {
	return spec.ServicePort{Namespace: "ns", Name: name, PortName: portName, ClusterIPs: []netip.Addr{addr("10.96.0.10")},
		Protocol: spec.ProtocolTCP, Port: port, InternalTrafficPolicy: spec.TrafficPolicyCluster, ExternalTrafficPolicy: spec.TrafficPolicyCluster, Endpoints: eps}
}

func readyEp(a string, port uint16, node string) spec.Endpoint {
	return spec.Endpoint{Addr: addr(a), Port: port, Ready: true, Serving: true, NodeName: node}
}

func TestBuildState(t *testing.T) {
	http := []discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolTCP)}
	for _, tc := range []struct {
		name     string
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		want     []spec.ServicePort
		skipped  int
	}{
		{
			name:     "cluster IP with ready endpoints, targetPort resolved through the slice port",
			services: []*corev1.Service{svc("web")},
			slices:   []*discoveryv1.EndpointSlice{slice("web-1", "web", http, ep("10.244.0.2", "a"), ep("10.244.0.3", "b"))},
			want:     []spec.ServicePort{sp("web", "http", 80, readyEp("10.244.0.2", 8080, "a"), readyEp("10.244.0.3", 8080, "b"))},
		},
		{
			name: "named ports: each service port takes its own slice port",
			services: []*corev1.Service{svc("web", func(s *corev1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP})
			})},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", []discoveryv1.EndpointPort{port("metrics", 9100, corev1.ProtocolTCP), port("http", 8080, corev1.ProtocolTCP)}, ep("10.244.0.2", ""))},
			want: []spec.ServicePort{
				sp("web", "http", 80, readyEp("10.244.0.2", 8080, "")),
				sp("web", "metrics", 9090, readyEp("10.244.0.2", 9100, "")),
			},
		},
		{
			name:     "protocol must match too",
			services: []*corev1.Service{svc("web")},
			slices:   []*discoveryv1.EndpointSlice{slice("web-1", "web", []discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolUDP)}, ep("10.244.0.2", ""))},
			want:     []spec.ServicePort{sp("web", "http", 80)},
		},
		{
			name:     "two slices merged, a duplicate kept once and ready wins",
			services: []*corev1.Service{svc("web")},
			slices: []*discoveryv1.EndpointSlice{
				slice("web-2", "web", http, ep("10.244.0.3", ""), ep("10.244.0.2", "", conditions(no(), no(), nil))),
				slice("web-1", "web", http, ep("10.244.0.2", "")),
				slice("other", "other", http, ep("10.244.9.9", "")),
			},
			want: []spec.ServicePort{sp("web", "http", 80, readyEp("10.244.0.2", 8080, ""), readyEp("10.244.0.3", 8080, ""))},
		},
		{
			name:     "conditions: nil serving follows ready, terminating kept",
			services: []*corev1.Service{svc("web")},
			slices: []*discoveryv1.EndpointSlice{slice("web-1", "web", http,
				ep("10.244.0.2", "", conditions(no(), nil, nil)),
				ep("10.244.0.3", "", conditions(no(), yes(), yes())))},
			want: []spec.ServicePort{sp("web", "http", 80,
				spec.Endpoint{Addr: addr("10.244.0.2"), Port: 8080},
				spec.Endpoint{Addr: addr("10.244.0.3"), Port: 8080, Serving: true, Terminating: true})},
		},
		{
			name: "headless, ExternalName and unallocated services are skipped silently",
			services: []*corev1.Service{
				svc("headless", func(s *corev1.Service) {
					s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
				}),
				svc("ext", func(s *corev1.Service) {
					s.Spec.Type, s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "", nil, "example.com"
				}),
				svc("pending", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }),
			},
		},
		{
			name: "NodePort and LoadBalancer with traffic policies and affinity",
			services: []*corev1.Service{svc("lb", func(s *corev1.Service) {
				local := corev1.ServiceInternalTrafficPolicyLocal
				timeout := int32(60)
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.InternalTrafficPolicy = &local
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "172.18.255.1"}, {Hostname: "lb.example"}}
			})},
			want: []spec.ServicePort{func() spec.ServicePort {
				p := sp("lb", "http", 80)
				p.NodePort, p.LoadBalancerIPs = 30080, []netip.Addr{addr("172.18.255.1")}
				p.InternalTrafficPolicy, p.ExternalTrafficPolicy = spec.TrafficPolicyLocal, spec.TrafficPolicyLocal
				p.SessionAffinityTimeout = time.Minute
				return p
			}()},
		},
		{
			name: "ClusterIP type ignores nodePort, eTP and LB status; default affinity timeout",
			services: []*corev1.Service{svc("c", func(s *corev1.Service) {
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "172.18.255.1"}}
			})},
			want: []spec.ServicePort{func() spec.ServicePort {
				p := sp("c", "http", 80)
				p.SessionAffinityTimeout = DefaultAffinityTimeout
				return p
			}()},
		},
		{
			name: "external IPs make a ClusterIP service externally accessible",
			services: []*corev1.Service{svc("ext", func(s *corev1.Service) {
				s.Spec.ExternalIPs = []string{"203.0.113.5"}
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.Ports[0].NodePort = 30080 // not a NodePort service: ignored
			})},
			want: []spec.ServicePort{func() spec.ServicePort {
				p := sp("ext", "http", 80)
				p.ExternalIPs = []netip.Addr{addr("203.0.113.5")}
				p.ExternalTrafficPolicy = spec.TrafficPolicyLocal
				return p
			}()},
		},
		{
			name:     "a bad cluster IP is reported",
			services: []*corev1.Service{svc("bad", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.300"} })},
			skipped:  1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := BuildState("a", nil, tc.services, tc.slices)
			if len(skipped) != tc.skipped {
				t.Errorf("skipped = %v, want %d", skipped, tc.skipped)
			}
			if !reflect.DeepEqual(got.Services, tc.want) {
				t.Errorf("services:\n got %+v\nwant %+v", got.Services, tc.want)
			}
		})
	}
}
