package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/kubelab/kubelab/plugins/proxy/internal/labnet"
	"github.com/kubelab/kubelab/spec"
)

// TestKernel programs a real table in a fresh node namespace and judges by
// traffic only.
func TestKernel(t *testing.T) {
	lab := labnet.New(t)
	lab.Serve(t, 8080)
	ctx := context.Background()
	suffix := fmt.Sprintf("test-%d", os.Getpid())
	p, err := New(spec.ProxyConfig{NodeName: "node-a", Options: map[string]string{"netns": lab.Node, "table-suffix": suffix}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cleanup(ctx) })
	b := labnet.BackendIPs
	endpoint := func(a netip.Addr, ready bool) spec.Endpoint {
		return spec.Endpoint{Addr: a, Port: 8080, Ready: ready, Serving: ready, NodeName: "node-a"}
	}
	web := netip.MustParseAddrPort("10.96.0.10:80")
	empty := netip.MustParseAddrPort("10.96.0.11:80")
	dns := netip.MustParseAddrPort("10.96.0.12:53")
	hairpin := netip.MustParseAddrPort("10.96.0.13:80")
	nodePort := netip.AddrPortFrom(labnet.NodeClientIP, 30080)
	externalIP := netip.MustParseAddrPort("203.0.113.5:80")
	state := spec.ProxyState{NodeName: "node-a", NodeAddresses: []netip.Addr{labnet.NodeClientIP}, Services: []spec.ServicePort{
		{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{web.Addr()}, ExternalIPs: []netip.Addr{externalIP.Addr()}, Protocol: spec.ProtocolTCP, Port: 80, NodePort: nodePort.Port(),
			Endpoints: []spec.Endpoint{endpoint(b[0], true), endpoint(b[1], false)}},
		{Namespace: "ns", Name: "empty", ClusterIPs: []netip.Addr{empty.Addr()}, Protocol: spec.ProtocolTCP, Port: 80},
		{Namespace: "ns", Name: "dns", ClusterIPs: []netip.Addr{dns.Addr()}, Protocol: spec.ProtocolUDP, Port: 53,
			Endpoints: []spec.Endpoint{endpoint(b[2], true)}},
		{Namespace: "ns", Name: "hairpin", ClusterIPs: []netip.Addr{hairpin.Addr()}, Protocol: spec.ProtocolTCP, Port: 80,
			Endpoints: []spec.Endpoint{endpoint(b[0], true)}},
	}}
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}

	t.Run("unready endpoint gets nothing", func(t *testing.T) {
		if got := lab.Backends(t, lab.Node, "tcp", web, 20); !slices.Equal(got, b[:1]) {
			t.Errorf("backends = %v, want only %v", got, b[0])
		}
	})
	t.Run("no endpoints is refused", func(t *testing.T) {
		_, err := lab.Dial(lab.Node, "tcp", netip.Addr{}, empty)
		if !labnet.IsRefused(err) {
			t.Errorf("dial a service without endpoints: %v, want connection refused", err)
		}
	})
	t.Run("udp", func(t *testing.T) {
		if got := lab.Backends(t, lab.Node, "udp", dns, 3); !slices.Equal(got, b[2:3]) {
			t.Errorf("udp backends = %v, want %v", got, b[2])
		}
	})
	t.Run("udp flows leave a removed endpoint", func(t *testing.T) {
		src := netip.AddrPortFrom(labnet.NodeBackendIP, 40053)
		r, err := lab.DialFrom(lab.Node, "udp", src, dns)
		if err != nil || r.Backend.Addr() != b[2] {
			t.Fatalf("udp from %s: %+v, %v; want %s", src, r, err, b[2])
		}
		st := state
		st.Services = slices.Clone(state.Services)
		st.Services[2].Endpoints = []spec.Endpoint{endpoint(b[0], true)}
		if err := p.Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		// The same client flow (same source port) must now reach b[0]:
		// its conntrack entry to b[2] is gone.
		if r, err := lab.DialFrom(lab.Node, "udp", src, dns); err != nil || r.Backend.Addr() != b[0] {
			t.Errorf("udp from %s after the endpoint changed: %+v, %v; want %s", src, r, err, b[0])
		}
		if err := p.Sync(ctx, state); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		r, err := lab.Dial(lab.Backend, "tcp", b[0], hairpin)
		if err != nil {
			t.Fatal(err)
		}
		if r.Backend.Addr() != b[0] || r.Client != labnet.NodeBackendIP {
			t.Errorf("hairpin reply %+v, want backend %s seeing the node %s", r, b[0], labnet.NodeBackendIP)
		}
	})
	t.Run("external IP", func(t *testing.T) {
		if got := lab.Backends(t, lab.Client, "tcp", externalIP, 3); !slices.Equal(got, b[:1]) {
			t.Errorf("external IP backends = %v, want %v", got, b[:1])
		}
	})
	t.Run("nodeport cluster policy masquerades", func(t *testing.T) {
		r, err := lab.Dial(lab.Client, "tcp", netip.Addr{}, nodePort)
		if err != nil {
			t.Fatal(err)
		}
		if r.Backend.Addr() != b[0] || r.Client != labnet.NodeBackendIP {
			t.Errorf("nodeport reply %+v, want %s seeing the node", r, b[0])
		}
	})

	// The second endpoint becomes ready, the NodePort turns Local: both get
	// traffic, and the client's address is kept.
	state.Services[0].Endpoints[1] = endpoint(b[1], true)
	state.Services[0].ExternalTrafficPolicy = spec.TrafficPolicyLocal
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	t.Run("both ready endpoints get traffic", func(t *testing.T) {
		if got := lab.Backends(t, lab.Node, "tcp", web, 40); !slices.Equal(got, b[:2]) {
			t.Errorf("backends = %v, want %v", got, b[:2])
		}
	})
	t.Run("nodeport local policy keeps the source", func(t *testing.T) {
		r, err := lab.Dial(lab.Client, "tcp", netip.Addr{}, nodePort)
		if err != nil {
			t.Fatal(err)
		}
		if r.Client != labnet.ClientIP {
			t.Errorf("nodeport (Local) reply %+v, want the client %s", r, labnet.ClientIP)
		}
	})

	// Session affinity: every connection from one client sticks.
	state.Services[0].SessionAffinityTimeout = 60 * 1e9
	if err := p.Sync(ctx, state); err != nil {
		t.Fatal(err)
	}
	t.Run("session affinity", func(t *testing.T) {
		if got := lab.Backends(t, lab.Node, "tcp", web, 20); len(got) != 1 {
			t.Errorf("backends with ClientIP affinity = %v, want one", got)
		}
	})

	t.Run("restart over existing rules keeps established connections", func(t *testing.T) {
		conn, r, err := lab.Open(lab.Client, web)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A new process: it knows nothing of the table and rewrites it.
		p2, err := New(spec.ProxyConfig{NodeName: "node-a", Options: map[string]string{"netns": lab.Node, "table-suffix": suffix}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p2.Sync(ctx, state); err != nil {
			t.Fatal(err)
		}
		if err := labnet.Echo(conn); err != nil {
			t.Errorf("connection to %s after a full rewrite: %v", r.Backend, err)
		}
		// The other endpoint goes away: the connection to the survivor stays.
		st := state
		st.Services = slices.Clone(state.Services)
		st.Services[0].Endpoints = []spec.Endpoint{endpoint(r.Backend.Addr(), true)}
		if err := p2.Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := labnet.Echo(conn); err != nil {
			t.Errorf("connection to the surviving %s after endpoint churn: %v", r.Backend, err)
		}
		if err := p2.Sync(ctx, state); err != nil {
			t.Fatal(err)
		}
		p = p2
	})
	t.Run("a failed transaction leaves the previous rules", func(t *testing.T) {
		real := p.nft
		p.nft = breaker{real}
		st := state
		st.Services = state.Services[1:] // web removed
		if err := p.Sync(ctx, st); err == nil {
			t.Fatal("Sync with a broken transaction succeeded")
		}
		if _, err := lab.Dial(lab.Node, "tcp", netip.Addr{}, web); err != nil {
			t.Errorf("after a failed Sync the previous rules are gone: %v", err)
		}
		p.nft = real
		if err := p.Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.Dial(lab.Node, "tcp", netip.Addr{}, web); err == nil {
			t.Errorf("web still answers after it was removed")
		}
	})

	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range lab.NftTables(t, lab.Node) {
		if strings.Contains(table, "kubelab-proxy-"+suffix) {
			t.Errorf("Cleanup left table %q", table)
		}
	}
	// After Cleanup the service address is not translated any more.
	if _, err := lab.Dial(lab.Node, "tcp", netip.Addr{}, dns); err == nil {
		t.Errorf("the ClusterIP still answers after Cleanup")
	}
}

// breaker appends a rule nft rejects to every transaction, which therefore
// fails as a whole.
type breaker struct{ Interface }

func (b breaker) Run(ctx context.Context, tx *knftables.Transaction) error {
	tx.Add(&knftables.Rule{Chain: chainServices, Rule: "this is not nft"})
	return b.Interface.Run(ctx, tx)
}
