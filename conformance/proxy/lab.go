package proxy

import (
	"net/netip"

	"github.com/kubelab/kubelab/spec/netlab"
)

// backends is how many backend namespaces a lab has.
const backends = 3

// backendIP is the address of backend i (0-based): 10.244.<i+1>.2, on a
// /24 of its own whose .1 is the node.
func backendIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 244, byte(i + 1), 2}) }

// newLab builds one spec's network (see spec/netlab), with one backend
// namespace per endpoint address,
//
//	client 10.250.0.2 ── kl-c ── node ── kl-b0..2 ── backend i 10.244.<i+1>.2
//
// so that a proxy's choice of endpoint is visible as which namespace
// answered. The caller closes it.
func newLab() (*netlab.Lab, error) {
	addrs := make([][]netip.Addr, backends)
	for i := range addrs {
		addrs[i] = []netip.Addr{backendIP(i)}
	}
	return netlab.New(addrs...)
}
