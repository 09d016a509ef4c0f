package freeport_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/kubelab/kubelab/spec/freeport"
)

func TestPortsAreDistinctAndBindable(t *testing.T) {
	ports, err := freeport.Ports(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("Ports(8) = %v: want distinct positive ports", ports)
		}
		seen[p] = true
	}
	// Released: the caller can bind them.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if err != nil {
		t.Fatalf("binding a port Ports returned: %v", err)
	}
	l.Close()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	if host, _, err := net.SplitHostPort(a); err != nil || host != "127.0.0.1" {
		t.Errorf("Addr() = %q, %v", a, err)
	}
}
