package netlab

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadBackends(t *testing.T) {
	for name, b := range map[string][][]netip.Addr{
		"no backend":    nil,
		"empty backend": {{}},
		"two /24s":      {{netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("10.244.1.2")}},
		"not IPv4":      {{netip.MustParseAddr("fd00::2")}},
	} {
		if l, err := New(b...); err == nil {
			l.Close()
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

// TestLab builds a two-backend lab, reaches each backend from the node,
// sees the client's address at a backend, and checks that Close leaves
// the host as it was.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	before, err := HostSnapshot("kubelab-netlab-test")
	if err != nil {
		t.Fatal(err)
	}
	b0, b1 := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.2.2")
	b0b := netip.MustParseAddr("10.244.1.3")
	l, err := New([]netip.Addr{b0, b0b}, []netip.Addr{b1})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.NodeBackendIP(1); got != netip.MustParseAddr("10.244.2.1") {
		t.Errorf("NodeBackendIP(1) = %s", got)
	}
	if err := l.Serve(8080); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{b0, b0b, b1} {
		for _, network := range []string{"tcp", "udp"} {
			r, err := Dial(l.Node, network, netip.AddrPortFrom(a, 8080), 5*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", network, a, err)
			}
			if r.Backend != netip.AddrPortFrom(a, 8080) {
				t.Errorf("%s %s answered by %s", network, a, r.Backend)
			}
		}
	}
	r, err := Dial(l.Client, "tcp", netip.AddrPortFrom(b1, 8080), 5*time.Second)
	if err != nil || r.Client != ClientIP {
		t.Errorf("client to backend 1: %+v, %v; want the client's address seen", r, err)
	}
	c, _, err := Open(l.Backends[1], netip.AddrPortFrom(b0, 8080), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := Echo(c, 5*time.Second); err != nil {
		t.Error(err)
	}
	c.Close()
	if _, err := Dial(l.Node, "tcp", netip.AddrPortFrom(b0, 9), 5*time.Second); !IsRefused(err) {
		t.Errorf("closed port: %v, want refused", err)
	}
	fp, err := l.Footprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fp, "link kl-b1") || !slices.ContainsFunc(fp, func(s string) bool { return strings.HasPrefix(s, "addr kl-c 10.250.0.1/24") }) {
		t.Errorf("footprint %q lacks the lab's links", fp)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Node); !os.IsNotExist(err) {
		t.Errorf("namespace pin %s left behind: %v", l.Node, err)
	}
	after, err := HostSnapshot("kubelab-netlab-test")
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the host changed:\nbefore: %s\nafter:  %s", before, after)
	}
}
