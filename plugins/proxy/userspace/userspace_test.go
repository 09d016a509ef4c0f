package userspace

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/kubelab/kubelab/plugins/proxy/internal/labnet"
	"github.com/kubelab/kubelab/spec"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func endpoint(a netip.Addr, node string, ready bool) spec.Endpoint {
	return spec.Endpoint{Addr: a, Port: 8080, Ready: ready, Serving: ready, NodeName: node}
}

func TestCompute(t *testing.T) {
	st := spec.ProxyState{NodeName: "a", NodeAddresses: []netip.Addr{ip("192.168.0.1")}, Services: []spec.ServicePort{
		{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{ip("10.96.0.1")}, Protocol: spec.ProtocolTCP, Port: 80, NodePort: 30080,
			ExternalTrafficPolicy: spec.TrafficPolicyLocal,
			Endpoints:             []spec.Endpoint{endpoint(ip("10.0.0.1"), "a", true), endpoint(ip("10.0.0.2"), "b", true), endpoint(ip("10.0.0.3"), "a", false)}},
		{Namespace: "ns", Name: "empty", ClusterIPs: []netip.Addr{ip("10.96.0.2")}, LoadBalancerIPs: []netip.Addr{ip("172.18.0.1")}, Protocol: spec.ProtocolUDP, Port: 53},
		{Namespace: "ns", Name: "sctp", ClusterIPs: []netip.Addr{ip("10.96.0.3")}, Protocol: spec.ProtocolSCTP, Port: 9},
	}}
	d, err := Compute(st)
	if !errors.Is(err, spec.ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported for SCTP", err)
	}
	if want := []netip.Addr{ip("10.96.0.1"), ip("10.96.0.2"), ip("172.18.0.1")}; !slices.Equal(d.Addresses, want) {
		t.Errorf("addresses = %v, want %v (the unsupported service's IP left out)", d.Addresses, want)
	}
	if got := d.Listeners["tcp/10.96.0.1:80"].Endpoints; !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:8080"), netip.MustParseAddrPort("10.0.0.2:8080")}) {
		t.Errorf("cluster IP endpoints = %v", got)
	}
	if got := d.Listeners["tcp/192.168.0.1:30080"].Endpoints; !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:8080")}) {
		t.Errorf("NodePort (eTP Local) endpoints = %v, want the local one", got)
	}
	if _, ok := d.Listeners["udp/10.96.0.2:53"]; ok {
		t.Errorf("a service without endpoints has a listener")
	}
	if len(d.Listeners) != 2 {
		t.Errorf("listeners = %v", d.Listeners)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := New(spec.ProxyConfig{Options: map[string]string{"label": "much-too-long-label"}}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("long label: %v", err)
	}
	if _, err := New(spec.ProxyConfig{Options: map[string]string{"nope": "x"}}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("unknown option: %v", err)
	}
}

// TestKernel runs the proxy in a fresh node namespace and judges by
// traffic only.
func TestKernel(t *testing.T) {
	lab := labnet.New(t)
	lab.Serve(t, 8080)
	ctx := context.Background()
	p, err := New(spec.ProxyConfig{NodeName: "node-a", Options: map[string]string{"netns": lab.Node, "label": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cleanup(ctx) })
	b := labnet.BackendIPs
	web := netip.MustParseAddrPort("10.96.0.10:80")
	empty := netip.MustParseAddrPort("10.96.0.11:80")
	dns := netip.MustParseAddrPort("10.96.0.12:53")
	nodePort := netip.AddrPortFrom(labnet.NodeClientIP, 30080)
	externalIP := netip.MustParseAddrPort("203.0.113.5:80")
	state := spec.ProxyState{NodeName: "node-a", NodeAddresses: []netip.Addr{labnet.NodeClientIP}, Services: []spec.ServicePort{
		{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{web.Addr()}, ExternalIPs: []netip.Addr{externalIP.Addr()}, Protocol: spec.ProtocolTCP, Port: 80, NodePort: nodePort.Port(),
			Endpoints: []spec.Endpoint{endpoint(b[0], "node-a", true), endpoint(b[1], "node-a", false)}},
		{Namespace: "ns", Name: "empty", ClusterIPs: []netip.Addr{empty.Addr()}, Protocol: spec.ProtocolTCP, Port: 80},
		{Namespace: "ns", Name: "dns", ClusterIPs: []netip.Addr{dns.Addr()}, Protocol: spec.ProtocolUDP, Port: 53,
			Endpoints: []spec.Endpoint{endpoint(b[2], "node-a", true)}},
	}}
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	t.Run("unready endpoint gets nothing", func(t *testing.T) {
		if got := lab.Backends(t, lab.Node, "tcp", web, 10); !slices.Equal(got, b[:1]) {
			t.Errorf("backends = %v, want only %v", got, b[0])
		}
	})
	t.Run("no endpoints is refused", func(t *testing.T) {
		if _, err := lab.Dial(lab.Node, "tcp", netip.Addr{}, empty); !labnet.IsRefused(err) {
			t.Errorf("dial a service without endpoints: %v, want connection refused", err)
		}
	})
	t.Run("udp", func(t *testing.T) {
		if got := lab.Backends(t, lab.Client, "udp", dns, 3); !slices.Equal(got, b[2:3]) {
			t.Errorf("udp backends = %v, want %v", got, b[2])
		}
	})
	t.Run("udp flows leave a removed endpoint", func(t *testing.T) {
		src := netip.AddrPortFrom(labnet.ClientIP, 40053)
		if r, err := lab.DialFrom(lab.Client, "udp", src, dns); err != nil || r.Backend.Addr() != b[2] {
			t.Fatalf("udp from %s: %+v, %v; want %s", src, r, err, b[2])
		}
		st := state
		st.Services = slices.Clone(state.Services)
		st.Services[2].Endpoints = []spec.Endpoint{endpoint(b[0], "node-a", true)}
		if err := p.Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		if r, err := lab.DialFrom(lab.Client, "udp", src, dns); err != nil || r.Backend.Addr() != b[0] {
			t.Errorf("udp from %s after the endpoint changed: %+v, %v; want %s", src, r, err, b[0])
		}
		if err := p.Sync(ctx, state); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		r, err := lab.Dial(lab.Backend, "tcp", b[0], web)
		if err != nil {
			t.Fatal(err)
		}
		if r.Backend.Addr() != b[0] {
			t.Errorf("hairpin reply %+v, want backend %s", r, b[0])
		}
	})
	t.Run("external IP", func(t *testing.T) {
		if got := lab.Backends(t, lab.Client, "tcp", externalIP, 3); !slices.Equal(got, b[:1]) {
			t.Errorf("external IP backends = %v, want %v", got, b[:1])
		}
	})
	t.Run("nodeport from outside", func(t *testing.T) {
		if got := lab.Backends(t, lab.Client, "tcp", nodePort, 3); !slices.Equal(got, b[:1]) {
			t.Errorf("nodeport backends = %v", got)
		}
	})

	state.Services[0].Endpoints[1] = endpoint(b[1], "node-a", true)
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	t.Run("both ready endpoints get traffic", func(t *testing.T) {
		if got := lab.Backends(t, lab.Client, "tcp", web, 10); !slices.Equal(got, b[:2]) {
			t.Errorf("backends = %v, want %v", got, b[:2])
		}
	})
	state.Services[0].SessionAffinityTimeout = time.Minute
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	t.Run("session affinity", func(t *testing.T) {
		if got := lab.Backends(t, lab.Client, "tcp", web, 10); len(got) != 1 {
			t.Errorf("backends with ClientIP affinity = %v, want one", got)
		}
	})
	// No endpoint is usable any more: the listener closes and the kernel
	// refuses new connections, but an established one goes on while its
	// endpoint is in the state, and ends when it is not.
	conn, r, err := lab.Open(lab.Client, web)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	state.Services[0].Endpoints = []spec.Endpoint{endpoint(b[0], "node-a", false), endpoint(b[1], "node-a", false)}
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Dial(lab.Client, "tcp", netip.Addr{}, web); !labnet.IsRefused(err) {
		t.Errorf("without usable endpoints: %v, want connection refused", err)
	}
	if err := labnet.Echo(conn); err != nil {
		t.Errorf("established connection to %s (unready, still in the state): %v", r.Backend, err)
	}
	state.Services[0].Endpoints = nil
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	if err := labnet.Echo(conn); err == nil {
		t.Errorf("connection to %s still open after the endpoint left the state", r.Backend)
	}

	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if addrs := lab.Addrs(t, lab.Node, "lo"); !slices.Equal(addrs, []string{"127.0.0.1/8"}) {
		t.Errorf("Cleanup left addresses on lo: %v", addrs)
	}
	if _, err := lab.Dial(lab.Node, "udp", netip.Addr{}, dns); err == nil {
		t.Errorf("the UDP service still answers after Cleanup")
	}
}
