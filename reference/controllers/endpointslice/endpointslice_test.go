package endpointslice

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubelab/kubelab/spec/spectest"
)

func service(mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-svc", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: "10.0.0.10",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}}}
	if mutate != nil {
		mutate(s)
	}
	return s
}

// pod is a pod selected by the service, with IP ip and container port
// "http" on port.
func pod(name, ip string, port int32) *spectest.PodWrapper {
	p := spectest.MakePod().Name(name).Label("app", "web")
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: port}}
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		p.Status.PodIP = ip
	}
	return p
}

type epWant struct {
	pod                         string
	ready, serving, terminating bool
}

func TestDesired(t *testing.T) {
	never := func(p *spectest.PodWrapper) *spectest.PodWrapper {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		return p
	}
	other := pod("other-ns", "10.1.0.9", 8080).Ready(1).Namespace("elsewhere").Obj()
	unlabelled := spectest.MakePod().Name("unselected").Obj()
	unlabelled.Status.PodIP = "10.1.0.8"
	for _, tc := range []struct {
		name   string
		svc    *corev1.Service
		pods   []*corev1.Pod
		groups int
		want   []epWant // endpoints of the first group
		port   int32    // the first group's resolved port (0: no ports)
	}{
		{"ready pod is ready and serving", service(nil), []*corev1.Pod{pod("a", "10.1.0.1", 8080).Ready(1).Obj()}, 1,
			[]epWant{{"a", true, true, false}}, 8080},
		{"unready pod is listed not ready", service(nil), []*corev1.Pod{pod("a", "10.1.0.1", 8080).Phase(corev1.PodRunning).Obj()}, 1,
			[]epWant{{"a", false, false, false}}, 8080},
		{"terminating ready pod serves but is not ready", service(nil), []*corev1.Pod{pod("a", "10.1.0.1", 8080).Ready(1).Deleting().Obj()}, 1,
			[]epWant{{"a", false, true, true}}, 8080},
		{"publishNotReadyAddresses makes every endpoint ready", service(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			[]*corev1.Pod{pod("a", "10.1.0.1", 8080).Obj(), pod("b", "10.1.0.2", 8080).Deleting().Obj()}, 1,
			[]epWant{{"a", true, true, false}, {"b", true, true, true}}, 8080},
		{"pods without an IP, finished or not selected are left out", service(nil), []*corev1.Pod{
			pod("noip", "", 8080).Ready(1).Obj(), never(pod("done", "10.1.0.3", 8080)).Phase(corev1.PodSucceeded).Obj(),
			other, unlabelled, pod("a", "10.1.0.1", 8080).Ready(1).Obj()}, 1, []epWant{{"a", true, true, false}}, 8080},
		{"a named port resolving differently splits the groups", service(nil), []*corev1.Pod{
			pod("a", "10.1.0.1", 8080).Ready(1).Obj(), pod("b", "10.1.0.2", 9090).Ready(1).Obj()}, 2, []epWant{{"a", true, true, false}}, 8080},
		{"an unresolvable named port is left out for that pod", service(nil), []*corev1.Pod{
			func() *corev1.Pod {
				p := pod("a", "10.1.0.1", 0).Ready(1).Obj()
				p.Spec.Containers[0].Ports = nil
				return p
			}()}, 1,
			[]epWant{{"a", true, true, false}}, 0},
		{"numeric and unset target ports", service(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "x", Port: 81, TargetPort: intstr.FromInt32(9000)}}
		}), []*corev1.Pod{pod("a", "10.1.0.1", 1).Ready(1).Obj()}, 1, []epWant{{"a", true, true, false}}, 9000},
		{"an IPv6 pod IP is not in an IPv4 service", service(nil), []*corev1.Pod{pod("a", "fd00::1", 8080).Ready(1).Obj()}, 0, nil, 0},
		{"no selector: not this controller's", service(func(s *corev1.Service) { s.Spec.Selector = nil }), []*corev1.Pod{pod("a", "10.1.0.1", 8080).Obj()}, 0, nil, 0},
		{"ExternalName: none", service(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }), []*corev1.Pod{pod("a", "10.1.0.1", 8080).Obj()}, 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs := Desired(tc.svc, tc.pods)
			if len(gs) != tc.groups {
				t.Fatalf("%d groups, want %d: %+v", len(gs), tc.groups, gs)
			}
			if tc.groups == 0 {
				return
			}
			g := gs[0]
			if len(g.Endpoints) != len(tc.want) {
				t.Fatalf("endpoints %+v, want %+v", g.Endpoints, tc.want)
			}
			for i, w := range tc.want {
				ep := g.Endpoints[i]
				c := ep.Conditions
				if ep.TargetRef.Name != w.pod || *c.Ready != w.ready || *c.Serving != w.serving || *c.Terminating != w.terminating {
					t.Fatalf("endpoint %d: %s ready=%v serving=%v terminating=%v, want %+v", i, ep.TargetRef.Name, *c.Ready, *c.Serving, *c.Terminating, w)
				}
			}
			if tc.port == 0 && len(g.Ports) != 0 || tc.port != 0 && (len(g.Ports) != 1 || *g.Ports[0].Port != tc.port) {
				t.Fatalf("ports %+v, want port %d", g.Ports, tc.port)
			}
		})
	}
	h := pod("h", "10.1.0.1", 8080).Ready(1).Obj()
	h.Spec.Hostname, h.Spec.Subdomain = "h0", "web"
	if ep := Desired(service(nil), []*corev1.Pod{h})[0].Endpoints[0]; ep.Hostname == nil || *ep.Hostname != "h0" {
		t.Fatalf("hostname %v", ep.Hostname)
	}
}

func pods(n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		out = append(out, pod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), 8080).Ready(1).Obj())
	}
	return out
}

// applied returns the slices after ch is applied to existing (created ones
// get names "new-N").
func applied(existing []*discoveryv1.EndpointSlice, ch Changes) []*discoveryv1.EndpointSlice {
	byName := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		byName[s.Name] = s
	}
	for _, s := range ch.Update {
		byName[s.Name] = s
	}
	for _, s := range ch.Delete {
		delete(byName, s.Name)
	}
	for i, s := range ch.Create {
		c := s.DeepCopy()
		c.Name = fmt.Sprintf("new-%d", i)
		byName[c.Name] = c
	}
	var out []*discoveryv1.EndpointSlice
	for _, s := range byName {
		out = append(out, s)
	}
	return out
}

func TestPlan(t *testing.T) {
	svc := service(nil)
	t.Run("250 endpoints make slices of 100, 100, 50 with labels and owner", func(t *testing.T) {
		ch := Plan(svc, Desired(svc, pods(250)), nil, MaxEndpointsPerSlice)
		if len(ch.Create) != 3 || len(ch.Update)+len(ch.Delete) != 0 {
			t.Fatalf("changes %d/%d/%d", len(ch.Create), len(ch.Update), len(ch.Delete))
		}
		for i, want := range []int{100, 100, 50} {
			s := ch.Create[i]
			if len(s.Endpoints) != want || s.Labels[discoveryv1.LabelServiceName] != "web" || s.Labels[discoveryv1.LabelManagedBy] != ControllerName ||
				s.Labels["team"] != "a" || s.GenerateName != "web-" || s.AddressType != discoveryv1.AddressTypeIPv4 ||
				metav1.GetControllerOf(s).UID != svc.UID || *s.Ports[0].Port != 8080 {
				t.Fatalf("slice %d: %d endpoints, %+v", i, len(s.Endpoints), s.ObjectMeta)
			}
		}
	})
	t.Run("in sync: nothing to write", func(t *testing.T) {
		d := Desired(svc, pods(150))
		cur := applied(nil, Plan(svc, d, nil, MaxEndpointsPerSlice))
		if ch := Plan(svc, d, cur, MaxEndpointsPerSlice); len(ch.Create)+len(ch.Update)+len(ch.Delete) != 0 {
			t.Fatalf("writes on a synced service: %+v", ch)
		}
	})
	t.Run("endpoints stay in their slice; new ones fill the room", func(t *testing.T) {
		all := pods(120)
		cur := applied(nil, Plan(svc, Desired(svc, all[:110]), nil, MaxEndpointsPerSlice)) // 100 + 10
		next := append(append([]*corev1.Pod(nil), all[5:110]...), all[110:]...)            // 5 gone, 10 new
		ch := Plan(svc, Desired(svc, next), cur, MaxEndpointsPerSlice)
		if len(ch.Create) != 0 || len(ch.Delete) != 0 || len(ch.Update) != 2 {
			t.Fatalf("changes create %d update %d delete %d", len(ch.Create), len(ch.Update), len(ch.Delete))
		}
		total := 0
		for _, s := range applied(cur, ch) {
			if len(s.Endpoints) > MaxEndpointsPerSlice {
				t.Fatalf("slice with %d endpoints", len(s.Endpoints))
			}
			total += len(s.Endpoints)
		}
		if total != 115 {
			t.Fatalf("%d endpoints, want 115", total)
		}
	})
	t.Run("a readiness change updates the slice", func(t *testing.T) {
		ps := pods(2)
		cur := applied(nil, Plan(svc, Desired(svc, ps), nil, MaxEndpointsPerSlice))
		ps[0] = pod(ps[0].Name, ps[0].Status.PodIP, 8080).Phase(corev1.PodRunning).Obj()
		ch := Plan(svc, Desired(svc, ps), cur, MaxEndpointsPerSlice)
		if len(ch.Update) != 1 || *ch.Update[0].Endpoints[0].Conditions.Ready {
			t.Fatalf("changes %+v", ch)
		}
	})
	t.Run("no endpoints: one placeholder slice", func(t *testing.T) {
		cur := applied(nil, Plan(svc, Desired(svc, pods(3)), nil, MaxEndpointsPerSlice))
		ch := Plan(svc, nil, cur, MaxEndpointsPerSlice)
		if len(ch.Delete) != 1 || len(ch.Create) != 1 || len(ch.Create[0].Endpoints) != 0 || len(ch.Create[0].Ports) != 0 {
			t.Fatalf("changes %+v", ch)
		}
		after := applied(cur, ch)
		if ch := Plan(svc, nil, after, MaxEndpointsPerSlice); len(ch.Create)+len(ch.Update)+len(ch.Delete) != 0 {
			t.Fatalf("placeholder not kept: %+v", ch)
		}
		if ch := Plan(svc, Desired(svc, pods(1)), after, MaxEndpointsPerSlice); len(ch.Delete) != 1 || len(ch.Create) != 1 {
			t.Fatalf("placeholder not replaced: %+v", ch)
		}
	})
}

func TestTracker(t *testing.T) {
	now := time.Unix(1000, 0)
	slice := func(name, rv string, uid types.UID) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv, UID: uid}}
	}
	// Each case: slice a was created, b updated from version 5, c (uid-c)
	// deleted.
	written := func() *tracker {
		tr := newTracker()
		tr.now = func() time.Time { return now }
		tr.Created("svc", "a")
		tr.Updated("svc", "b", "5")
		tr.Deleted("svc", "c", "uid-c")
		return tr
	}
	a, b6 := slice("a", "1", ""), slice("b", "6", "")
	for _, tc := range []struct {
		name   string
		cached []*discoveryv1.EndpointSlice
		stale  bool
	}{
		{"all writes seen", []*discoveryv1.EndpointSlice{a, b6}, false},
		{"created slice not seen", []*discoveryv1.EndpointSlice{b6}, true},
		{"update not seen", []*discoveryv1.EndpointSlice{a, slice("b", "5", "")}, true},
		{"deleted slice still there", []*discoveryv1.EndpointSlice{a, b6, slice("c", "2", "uid-c")}, true},
		{"a new slice of the same name is not the deleted one", []*discoveryv1.EndpointSlice{a, b6, slice("c", "9", "other")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := written()
			if got := tr.Stale("svc", tc.cached); got != tc.stale {
				t.Fatalf("Stale = %v, want %v", got, tc.stale)
			}
			if !tc.stale && tr.Stale("svc", nil) {
				t.Fatal("seen writes must be forgotten")
			}
		})
	}
	tr := written()
	now = now.Add(trackerTTL + time.Second)
	if tr.Stale("svc", nil) {
		t.Fatal("writes older than the TTL must not hold the service back")
	}
}
