package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/netlab"
)

// backendPort is the port every backend server listens on (TCP and UDP).
const backendPort = 8080

// dialTimeout bounds a connection that must succeed; rejectTimeout is how
// soon a connection to a service without endpoints must be refused.
const (
	dialTimeout   = 5 * time.Second
	rejectTimeout = time.Second
)

// specTimeout bounds one spec.
const specTimeout = 2 * time.Minute

// mandatory are the capabilities every proxy must prove; the others are
// spec's optional spec.CapProxy* ones, which a target claims.
var mandatory = spec.Capabilities{CapClusterIP, CapSpread, CapReadiness, CapTerminatingFallback, CapReject,
	CapChurn, CapIdempotentSync, CapScale, CapCleanup}

// nodeSeq numbers the node names of the specs of this process.
var nodeSeq atomic.Int64

// fixture is one spec's lab and proxy.
type fixture struct {
	t     Target
	lab   *netlab.Lab
	proxy spec.Proxy
	node  string
}

// newFixture declares a BeforeEach that builds a fresh lab and proxy for
// every spec of the container, and their teardown.
func newFixture(t Target, c spec.Capability) *fixture {
	f := &fixture{t: t}
	BeforeEach(func(ctx SpecContext) {
		if !slices.Contains(mandatory, c) {
			harness.Require(t.Claims, c)
		}
		if os.Geteuid() != 0 {
			Fail("the proxy suite needs root: it builds network namespaces and the proxy programs one")
		}
		l, err := newLab()
		Expect(err).NotTo(HaveOccurred(), "building the lab")
		f.lab = l
		DeferCleanup(func() { Expect(l.Close()).To(Succeed(), "removing the lab") })
		Expect(l.Serve(backendPort)).To(Succeed(), "starting the backends")
		f.node = fmt.Sprintf("conf-%d-%d", os.Getpid(), nodeSeq.Add(1))
		px, err := t.New(ctx, f.node, l.Node)
		Expect(err).NotTo(HaveOccurred(), "building the proxy")
		f.proxy = px
		DeferCleanup(func(ctx SpecContext) { Expect(px.Cleanup(ctx)).To(Succeed(), "Cleanup at the end of the spec") })
	})
	return f
}

// state is a ProxyState of the fixture's node with services; NodePorts
// are open on netlab.NodeClientIP and the node's address towards backend 0.
func (f *fixture) state(services ...spec.ServicePort) spec.ProxyState {
	return spec.ProxyState{NodeName: f.node, NodeAddresses: f.nodeAddrs(), Services: services}
}

// nodeAddrs are the node addresses of every state.
func (f *fixture) nodeAddrs() []netip.Addr {
	return []netip.Addr{netlab.NodeClientIP, f.lab.NodeBackendIP(0)}
}

// sync hands the proxy the state with services and expects success.
func (f *fixture) sync(ctx context.Context, services ...spec.ServicePort) {
	GinkgoHelper()
	Expect(f.proxy.Sync(ctx, f.state(services...))).To(Succeed(), "Sync")
}

// clusterIP is the i-th address of netlab.ServiceCIDR (i ≥ 1).
func clusterIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 96, 0, byte(i)}) }

// service is a ServicePort name on ClusterIP ip, port 80 (or port), of
// protocol proto, with endpoints eps.
func service(name string, ip netip.Addr, proto spec.Protocol, eps ...spec.Endpoint) spec.ServicePort {
	return spec.ServicePort{Namespace: "conformance", Name: name, ClusterIPs: []netip.Addr{ip},
		Protocol: proto, Port: 80, Endpoints: eps}
}

// ready is backend i as a ready endpoint.
func ready(i int) spec.Endpoint {
	return spec.Endpoint{Addr: backendIP(i), Port: backendPort, Ready: true, Serving: true}
}

// unready is backend i as an endpoint that is neither ready nor serving.
func unready(i int) spec.Endpoint {
	return spec.Endpoint{Addr: backendIP(i), Port: backendPort}
}

// terminating is backend i as a terminating endpoint, serving or not.
func terminating(i int, serving bool) spec.Endpoint {
	return spec.Endpoint{Addr: backendIP(i), Port: backendPort, Serving: serving, Terminating: true}
}

// hits makes n connections (TCP) or single-datagram flows (UDP) from
// namespace ns to addr and counts the replies per backend address; every
// one must succeed.
func hits(ns, network string, addr netip.AddrPort, n int) map[netip.Addr]int {
	GinkgoHelper()
	out := map[netip.Addr]int{}
	for i := range n {
		r, err := netlab.Dial(ns, network, addr, dialTimeout)
		Expect(err).NotTo(HaveOccurred(), "%s connection %d of %d to %s", network, i+1, n, addr)
		Expect(r.Backend.Port()).To(Equal(uint16(backendPort)))
		out[r.Backend.Addr()]++
	}
	return out
}

// backendsOf returns the backend addresses of endpoints, sorted.
func backendsOf(is ...int) []netip.Addr {
	out := make([]netip.Addr, 0, len(is))
	for _, i := range is {
		out = append(out, backendIP(i))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// keys returns the addresses counted in m, sorted.
func keys(m map[netip.Addr]int) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// expectRefused dials addr from ns and expects the connection to be
// refused (a reset or an ICMP unreachable) within rejectTimeout, not to
// time out and not to be answered.
func expectRefused(ns string, addr netip.AddrPort) {
	GinkgoHelper()
	r, err := netlab.Dial(ns, "tcp", addr, rejectTimeout)
	Expect(err).To(HaveOccurred(), "%s answered (%+v); want the connection refused", addr, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		Fail(fmt.Sprintf("connection to %s timed out after %s; want it refused at once: %v", addr, rejectTimeout, err))
	}
	Expect(netlab.IsRefused(err)).To(BeTrue(), "connection to %s: %v; want refused", addr, err)
}
