// Package labnet adapts spec/netlab to the proxy plugins' kernel tests: a
// lab with one backend namespace holding three addresses,
//
//	client 10.250.0.2/24 ── kl-c ── node 10.250.0.1 | 10.244.0.1 ── kl-b0 ── backend 10.244.0.2-.4/24
//
// built per test (skipped when not root), torn down with t.Cleanup, and
// failing the test if the host's "kl-" links, kubelab-proxy nftables
// tables or ip_forward changed. The topology, the servers and the dialing
// are netlab's; this package only turns their errors into test failures.
package labnet

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kubelab/kubelab/spec/netlab"
)

// Addresses of the lab.
var (
	// BackendIPs are the backend namespace's addresses; NodeBackendIP is
	// the node's address on the backend's link.
	BackendIPs    = []netip.Addr{netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("10.244.0.3"), netip.MustParseAddr("10.244.0.4")}
	NodeBackendIP = netip.MustParseAddr("10.244.0.1")
	// ClientIP and NodeClientIP are the client's address and the node's
	// address on the client's link.
	ClientIP     = netip.MustParseAddr("10.250.0.2")
	NodeClientIP = netip.MustParseAddr("10.250.0.1")
)

// timeout bounds every connection the tests make.
const timeout = 5 * time.Second

// Lab is one built lab; its fields are the pinned namespace paths.
type Lab struct {
	Node, Backend, Client string
	lab                   *netlab.Lab
}

// New builds a lab for t, or skips t when not root. Teardown is registered
// with t.Cleanup.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	before := hostSnapshot(t)
	l, err := netlab.New(BackendIPs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("remove the lab: %v", err)
		}
		if after := hostSnapshot(t); after != before {
			t.Errorf("the host changed:\nbefore: %s\nafter:  %s", before, after)
		}
	})
	if l.NodeBackendIP(0) != NodeBackendIP || netlab.ClientIP != ClientIP || netlab.NodeClientIP != NodeClientIP {
		t.Fatalf("netlab addresses differ from labnet's")
	}
	return &Lab{Node: l.Node, Backend: l.Backends[0], Client: l.Client, lab: l}
}

func hostSnapshot(t testing.TB) string {
	t.Helper()
	s, err := netlab.HostSnapshot("kubelab-proxy")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Serve starts TCP and UDP servers on every backend address at port, until
// the test ends.
func (l *Lab) Serve(t testing.TB, port uint16) {
	t.Helper()
	if err := l.lab.Serve(port); err != nil {
		t.Fatal(err)
	}
}

// Reply is what a backend answered.
type Reply = netlab.Reply

// Dial connects from namespace ns (one of the lab's paths) to addr over
// network "tcp" or "udp", optionally from source address src, and returns
// the backend's reply. A refused connection is an error for which
// IsRefused holds.
func (l *Lab) Dial(ns, network string, src netip.Addr, addr netip.AddrPort) (Reply, error) {
	return netlab.DialFrom(ns, network, netip.AddrPortFrom(src, 0), addr, timeout)
}

// DialFrom is Dial from source address and port src (an invalid address
// or a zero port: any).
func (l *Lab) DialFrom(ns, network string, src, addr netip.AddrPort) (Reply, error) {
	return netlab.DialFrom(ns, network, src, addr, timeout)
}

// Open connects over TCP from namespace ns to addr, reads the greeting and
// returns the open connection, which the backend echoes on.
func (l *Lab) Open(ns string, addr netip.AddrPort) (net.Conn, Reply, error) {
	return netlab.Open(ns, addr, timeout)
}

// Echo sends a line on c and checks that it comes back within 5 s.
func Echo(c net.Conn) error { return netlab.Echo(c, timeout) }

// IsRefused reports whether err is a refused connection (TCP reset or
// ICMP unreachable), as opposed to a timeout.
func IsRefused(err error) bool { return netlab.IsRefused(err) }

// Backends dials n times and returns the set of backend addresses that
// answered; it fails t on any error.
func (l *Lab) Backends(t testing.TB, ns, network string, addr netip.AddrPort, n int) []netip.Addr {
	t.Helper()
	var seen []netip.Addr
	for range n {
		r, err := l.Dial(ns, network, netip.Addr{}, addr)
		if err != nil {
			t.Fatalf("%s %s from %s: %v", network, addr, filepath.Base(ns), err)
		}
		if !slices.Contains(seen, r.Backend.Addr()) {
			seen = append(seen, r.Backend.Addr())
		}
	}
	slices.SortFunc(seen, netip.Addr.Compare)
	return seen
}

// NftTables lists the nftables tables of namespace ns ("ip name" lines).
func (l *Lab) NftTables(t testing.TB, ns string) []string {
	t.Helper()
	out, err := netlab.NftTables(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Addrs lists the IPv4 addresses (as prefixes) of link name in namespace ns.
func (l *Lab) Addrs(t testing.TB, ns, name string) []string {
	t.Helper()
	out, err := netlab.Addrs(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
