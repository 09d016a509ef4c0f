// Package freeport finds loopback TCP ports that are free, for servers
// that must be told their port before they start (etcd's peer and client
// URLs, a port-forward's local end, a component's --listen flag). It lives
// under spec/ so that plugins, conformance and tools share one copy; it
// imports no other kubelab package.
//
// A port is free only when it is looked at: another process may bind it
// before the caller does. Callers that can retry on "address in use"
// should; callers that can listen on port 0 and read the address back
// should do that instead.
package freeport

import (
	"fmt"
	"net"
)

// Ports returns n distinct TCP ports of 127.0.0.1 that were free a moment
// ago: it binds all n at once (so they differ), then releases them for the
// caller to bind.
func Ports(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("freeport: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Addr returns "127.0.0.1:PORT" for one port that was free a moment ago.
func Addr() (string, error) {
	p, err := Ports(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p[0]), nil
}
