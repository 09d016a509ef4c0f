package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/netlab"
)

// Register declares every spec of the suite against t. Call it once, before
// Ginkgo's RunSpecs; it declares containers and runs nothing itself.
func Register(t Target) {
	describe(t, CapClusterIP, "ClusterIP", specsClusterIP)
	describe(t, CapSpread, "load balancing", specsSpread)
	describe(t, CapReadiness, "readiness", specsReadiness)
	describe(t, CapTerminatingFallback, "terminating fallback", specsTerminatingFallback)
	describe(t, CapReject, "services without endpoints", specsReject)
	describe(t, CapChurn, "endpoint churn", specsChurn)
	describe(t, CapIdempotentSync, "Sync", specsIdempotentSync)
	describe(t, CapScale, "1 000 services", specsScale, harness.LabelSlow)
	describe(t, CapCleanup, "Cleanup", specsCleanup)
	describe(t, spec.CapProxyUDP, "UDP", specsUDP)
	describe(t, spec.CapProxyNodePort, "NodePort", specsNodePort)
	describe(t, spec.CapProxySessionAffinity, "ClientIP session affinity", specsAffinity)
	describe(t, spec.CapProxyHairpin, "hairpin", specsHairpin)
	describe(t, spec.CapProxyLoadBalancer, "LoadBalancer IPs", specsLoadBalancer)
	describe(t, spec.CapProxyExternalIPs, "external IPs", specsExternalIPs)
	describe(t, spec.CapProxyInternalTrafficLocal, "internalTrafficPolicy Local", specsInternalLocal)
	describe(t, spec.CapProxyExternalTrafficLocal, "externalTrafficPolicy Local", specsExternalLocal)
}

// describe declares a container for capability c of target t whose specs
// get a fixture.
func describe(t Target, c spec.Capability, text string, body func(f *fixture), extra ...string) {
	Describe("Proxy "+text, harness.Labels(c, extra...), func() {
		body(newFixture(t, c))
	})
}

func vip(i int) netip.AddrPort { return netip.AddrPortFrom(clusterIP(i), 80) }

func specsClusterIP(f *fixture) {
	It("sends TCP to each service's ClusterIP to that service's ready endpoints only", func(ctx SpecContext) {
		f.sync(ctx,
			service("a", clusterIP(1), spec.ProtocolTCP, ready(0)),
			service("b", clusterIP(2), spec.ProtocolTCP, ready(1), ready(2)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 10))).To(Equal(backendsOf(0)), "service a")
		Expect(keys(hits(f.lab.Node, "tcp", vip(2), 40))).To(Equal(backendsOf(1, 2)), "service b")
	}, SpecTimeout(specTimeout))

	It("serves a service added by a later Sync and stops serving one removed", func(ctx SpecContext) {
		a := service("a", clusterIP(1), spec.ProtocolTCP, ready(0))
		b := service("b", clusterIP(2), spec.ProtocolTCP, ready(1))
		f.sync(ctx, a)
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 5))).To(Equal(backendsOf(0)))
		f.sync(ctx, a, b)
		Expect(keys(hits(f.lab.Node, "tcp", vip(2), 5))).To(Equal(backendsOf(1)))
		f.sync(ctx, b)
		r, err := netlab.Dial(f.lab.Node, "tcp", vip(1), rejectTimeout)
		Expect(err).To(HaveOccurred(), "the removed service a still answered: %+v", r)
		Expect(keys(hits(f.lab.Node, "tcp", vip(2), 5))).To(Equal(backendsOf(1)))
	}, SpecTimeout(specTimeout))
}

func specsSpread(f *fixture) {
	It("spreads 300 connections over 3 ready endpoints, each getting at least 15%", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1), ready(2)))
		got := hits(f.lab.Node, "tcp", vip(1), 300)
		Expect(keys(got)).To(Equal(backendsOf(0, 1, 2)), "counts %v", got)
		for a, n := range got {
			Expect(n).To(BeNumerically(">=", 45), "endpoint %s got %d of 300 connections (counts %v)", a, n, got)
		}
	}, SpecTimeout(specTimeout))
}

func specsReadiness(f *fixture) {
	It("gives an endpoint that is not ready no new connections, and gives it some once it is", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, ready(0), unready(1), ready(2)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 60))).To(Equal(backendsOf(0, 2)))
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, unready(0), ready(1), ready(2)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 60))).To(Equal(backendsOf(1, 2)))
	}, SpecTimeout(specTimeout))

	It("refuses connections to a service whose endpoints are all unready", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, unready(0), unready(1)))
		expectRefused(f.lab.Node, vip(1))
	}, SpecTimeout(specTimeout))
}

func specsTerminatingFallback(f *fixture) {
	It("uses the serving terminating endpoints only when no endpoint is ready", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, terminating(0, true), terminating(1, false)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 30))).To(Equal(backendsOf(0)), "no ready endpoint: the serving terminating one")
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, terminating(0, true), terminating(1, false), ready(2)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 30))).To(Equal(backendsOf(2)), "a ready endpoint: only it")
	}, SpecTimeout(specTimeout))
}

func specsReject(f *fixture) {
	It("refuses connections at once to a service without endpoints or with only terminating non-serving ones", func(ctx SpecContext) {
		f.sync(ctx,
			service("none", clusterIP(1), spec.ProtocolTCP),
			service("unusable", clusterIP(2), spec.ProtocolTCP, terminating(0, false), terminating(1, false)))
		expectRefused(f.lab.Node, vip(1))
		expectRefused(f.lab.Node, vip(2))
	}, SpecTimeout(specTimeout))

	It("refuses connections once a service's last endpoint is removed", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, ready(0)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 5))).To(Equal(backendsOf(0)))
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP))
		expectRefused(f.lab.Node, vip(1))
	}, SpecTimeout(specTimeout))
}

// openAll opens n connections from ns to addr and returns them with the
// backend each reached; they are closed at the end of the spec.
func openAll(ns string, addr netip.AddrPort, n int) ([]net.Conn, []netip.Addr) {
	GinkgoHelper()
	var conns []net.Conn
	var to []netip.Addr
	for i := range n {
		c, r, err := netlab.Open(ns, addr, dialTimeout)
		Expect(err).NotTo(HaveOccurred(), "connection %d to %s", i+1, addr)
		DeferCleanup(c.Close)
		conns = append(conns, c)
		to = append(to, r.Backend.Addr())
	}
	return conns, to
}

func specsChurn(f *fixture) {
	It("sends nothing new to a removed endpoint while connections to the survivors keep working", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1), ready(2)))
		conns, to := openAll(f.lab.Node, vip(1), 12)
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1)))
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 60))).To(Equal(backendsOf(0, 1)))
		kept := 0
		for i, c := range conns {
			if to[i] == backendIP(2) {
				continue
			}
			kept++
			Expect(netlab.Echo(c, dialTimeout)).To(Succeed(), "the established connection to surviving endpoint %s", to[i])
		}
		Expect(kept).To(BeNumerically(">", 0), "no connection reached a surviving endpoint")
	}, SpecTimeout(specTimeout))
}

func specsIdempotentSync(f *fixture) {
	It("changes nothing visible to traffic when synced again with the same state", func(ctx SpecContext) {
		state := func() []spec.ServicePort {
			return []spec.ServicePort{
				service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1)),
				service("empty", clusterIP(2), spec.ProtocolTCP),
			}
		}
		f.sync(ctx, state()...)
		conns, to := openAll(f.lab.Node, vip(1), 6)
		f.sync(ctx, state()...)
		f.sync(ctx, state()...)
		for i, c := range conns {
			Expect(netlab.Echo(c, dialTimeout)).To(Succeed(), "the established connection to %s after the repeated Syncs", to[i])
		}
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 60))).To(Equal(backendsOf(0, 1)))
		expectRefused(f.lab.Node, vip(2))
	}, SpecTimeout(specTimeout))
}

func specsCleanup(f *fixture) {
	It("leaves no table and no address in the node namespace, and the proxy works again after it", func(ctx SpecContext) {
		before, err := f.lab.Footprint(ctx)
		Expect(err).NotTo(HaveOccurred())
		web := service("web", clusterIP(1), spec.ProtocolTCP, ready(0))
		services := []spec.ServicePort{web, service("empty", clusterIP(2), spec.ProtocolTCP)}
		if f.t.Claims.Has(spec.CapProxyUDP) {
			services = append(services, service("dns", clusterIP(3), spec.ProtocolUDP, ready(1)))
		}
		if f.t.Claims.Has(spec.CapProxyNodePort) {
			services[0].NodePort = 30080
		}
		f.sync(ctx, services...)
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 3))).To(Equal(backendsOf(0)))
		Expect(f.proxy.Cleanup(ctx)).To(Succeed())
		after, err := f.lab.Footprint(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(Equal(before), "the node namespace after Cleanup (tables, links, addresses)")
		r, err := netlab.Dial(f.lab.Node, "tcp", vip(1), rejectTimeout)
		Expect(err).To(HaveOccurred(), "the ClusterIP still answered after Cleanup: %+v", r)
		Expect(f.proxy.Cleanup(ctx)).To(Succeed(), "a second Cleanup, with nothing installed")
		f.sync(ctx, services...)
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 3))).To(Equal(backendsOf(0)), "after Cleanup and a new Sync")
	}, SpecTimeout(specTimeout))
}

func specsUDP(f *fixture) {
	It("sends UDP flows to a ClusterIP to its endpoints only", func(ctx SpecContext) {
		f.sync(ctx,
			service("dns", clusterIP(1), spec.ProtocolUDP, ready(0), ready(1)),
			service("other", clusterIP(2), spec.ProtocolUDP, ready(2)))
		Expect(keys(hits(f.lab.Node, "udp", vip(1), 60))).To(Equal(backendsOf(0, 1)))
	}, SpecTimeout(specTimeout))

	It("keeps a TCP and a UDP port of the same number apart", func(ctx SpecContext) {
		tcp := service("web", clusterIP(1), spec.ProtocolTCP, ready(0))
		udp := service("web", clusterIP(1), spec.ProtocolUDP, ready(1))
		udp.PortName = "udp"
		f.sync(ctx, tcp, udp)
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 10))).To(Equal(backendsOf(0)), "TCP")
		Expect(keys(hits(f.lab.Node, "udp", vip(1), 10))).To(Equal(backendsOf(1)), "UDP")
	}, SpecTimeout(specTimeout))
}

func specsNodePort(f *fixture) {
	It("opens the NodePort on every node address to a client outside the node", func(ctx SpecContext) {
		web := service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1))
		web.NodePort = 30080
		f.sync(ctx, web)
		for _, a := range f.nodeAddrs() {
			Expect(keys(hits(f.lab.Client, "tcp", netip.AddrPortFrom(a, 30080), 40))).To(Equal(backendsOf(0, 1)), "node address %s", a)
		}
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 20))).To(Equal(backendsOf(0, 1)), "the ClusterIP")
	}, SpecTimeout(specTimeout))
}

func specsAffinity(f *fixture) {
	It("sends every connection of a client to the same endpoint, and picks another when it is removed", func(ctx SpecContext) {
		web := service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1), ready(2))
		web.SessionAffinityTimeout = 3 * time.Hour
		f.sync(ctx, web)
		first := keys(hits(f.lab.Node, "tcp", vip(1), 20))
		Expect(first).To(HaveLen(1), "20 connections of one client reached %v", first)
		gone := first[0]
		var eps []spec.Endpoint
		for i := range backends {
			if backendIP(i) != gone {
				eps = append(eps, ready(i))
			}
		}
		web.Endpoints = eps
		f.sync(ctx, web)
		next := keys(hits(f.lab.Node, "tcp", vip(1), 20))
		Expect(next).To(HaveLen(1), "20 connections of one client reached %v", next)
		Expect(next[0]).NotTo(Equal(gone), "the affine endpoint was removed")
	}, SpecTimeout(specTimeout))
}

func specsHairpin(f *fixture) {
	It("lets an endpoint reach its own service and itself through it, seeing a node address", func(ctx SpecContext) {
		f.sync(ctx, service("web", clusterIP(1), spec.ProtocolTCP, ready(0)))
		for range 5 {
			r, err := netlab.Dial(f.lab.Backends[0], "tcp", vip(1), dialTimeout)
			Expect(err).NotTo(HaveOccurred(), "backend 0 to its own service")
			Expect(r.Backend.Addr()).To(Equal(backendIP(0)))
			Expect(r.Client).NotTo(Equal(backendIP(0)), "the endpoint saw itself as the source; want a node address")
		}
	}, SpecTimeout(specTimeout))
}

// externalAddr is an address of netlab.ServiceCIDR used as a LoadBalancer or
// external IP (the client routes it through the node).
func externalAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 1, byte(i)}), 80)
}

func specsLoadBalancer(f *fixture) {
	It("serves a LoadBalancer IP to a client outside the node", func(ctx SpecContext) {
		web := service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1))
		web.LoadBalancerIPs = []netip.Addr{externalAddr(1).Addr()}
		f.sync(ctx, web, service("other", clusterIP(2), spec.ProtocolTCP, ready(2)))
		Expect(keys(hits(f.lab.Client, "tcp", externalAddr(1), 40))).To(Equal(backendsOf(0, 1)))
	}, SpecTimeout(specTimeout))
}

func specsExternalIPs(f *fixture) {
	It("serves an external IP to a client outside the node", func(ctx SpecContext) {
		web := service("web", clusterIP(1), spec.ProtocolTCP, ready(0), ready(1))
		web.ExternalIPs = []netip.Addr{externalAddr(2).Addr()}
		f.sync(ctx, web, service("other", clusterIP(2), spec.ProtocolTCP, ready(2)))
		Expect(keys(hits(f.lab.Client, "tcp", externalAddr(2), 40))).To(Equal(backendsOf(0, 1)))
	}, SpecTimeout(specTimeout))
}

// onNode is ep placed on node.
func onNode(ep spec.Endpoint, node string) spec.Endpoint {
	ep.NodeName = node
	return ep
}

func specsInternalLocal(f *fixture) {
	It("sends ClusterIP traffic only to the node's own endpoints with internalTrafficPolicy Local", func(ctx SpecContext) {
		web := service("web", clusterIP(1), spec.ProtocolTCP,
			onNode(ready(0), f.node), onNode(ready(1), "elsewhere"), onNode(ready(2), f.node))
		web.InternalTrafficPolicy = spec.TrafficPolicyLocal
		f.sync(ctx, web)
		Expect(keys(hits(f.lab.Node, "tcp", vip(1), 40))).To(Equal(backendsOf(0, 2)))
	}, SpecTimeout(specTimeout))
}

func specsExternalLocal(f *fixture) {
	It("sends NodePort traffic only to the node's own endpoints, with the client's own source address", func(ctx SpecContext) {
		web := service("web", clusterIP(1), spec.ProtocolTCP,
			onNode(ready(0), f.node), onNode(ready(1), "elsewhere"), onNode(ready(2), f.node))
		web.NodePort = 30080
		web.ExternalTrafficPolicy = spec.TrafficPolicyLocal
		f.sync(ctx, web)
		seen := map[netip.Addr]int{}
		for range 40 {
			r, err := netlab.Dial(f.lab.Client, "tcp", netip.AddrPortFrom(netlab.NodeClientIP, 30080), dialTimeout)
			Expect(err).NotTo(HaveOccurred())
			Expect(r.Client).To(Equal(netlab.ClientIP), "the source address the endpoint saw")
			seen[r.Backend.Addr()]++
		}
		Expect(keys(seen)).To(Equal(backendsOf(0, 2)))
	}, SpecTimeout(specTimeout))
}

// scaleServices is how many services the scale spec programs.
const scaleServices = 1000

// scaleIP is the ClusterIP of scale service i: 10.96.<10+i/200>.<1+i%200>.
func scaleIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 96, byte(10 + i/200), byte(1 + i%200)})
}

// scaleState is the scale spec's services: service i on backend i%3,
// except service changed, which is on backend (changed+gen)%3.
func scaleState(changed, gen int) []spec.ServicePort {
	out := make([]spec.ServicePort, scaleServices)
	for i := range out {
		b := i % backends
		if i == changed {
			b = (changed + gen) % backends
		}
		out[i] = service(fmt.Sprintf("s%04d", i), scaleIP(i), spec.ProtocolTCP, ready(b))
	}
	return out
}

func specsScale(f *fixture) {
	It("serves 1 000 services and never fails a connection to one of them while Syncs change another", func(ctx SpecContext) {
		const changed, watched, syncs = 7, 500, 20
		f.sync(ctx, scaleState(changed, 0)...)
		for i := 0; i < scaleServices; i += 97 {
			addr := netip.AddrPortFrom(scaleIP(i), 80)
			Expect(keys(hits(f.lab.Node, "tcp", addr, 1))).To(Equal(backendsOf(i%backends)), "service %d", i)
		}
		conn, r, err := netlab.Open(f.lab.Node, netip.AddrPortFrom(scaleIP(watched), 80), dialTimeout)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close)
		Expect(r.Backend.Addr()).To(Equal(backendIP(watched % backends)))

		// Traffic to the watched service (4 clients in a loop) runs while
		// the changed one is moved from backend to backend, Sync after
		// Sync.
		stop := make(chan struct{})
		type result struct {
			ok   int
			errs []error
		}
		const watchers = 4
		done := make(chan result, watchers)
		for range watchers {
			go func() {
				var res result
				addr := netip.AddrPortFrom(scaleIP(watched), 80)
				for {
					select {
					case <-stop:
						done <- res
						return
					default:
					}
					r, err := netlab.Dial(f.lab.Node, "tcp", addr, dialTimeout)
					switch {
					case err != nil:
						res.errs = append(res.errs, err)
					case r.Backend.Addr() != backendIP(watched%backends):
						res.errs = append(res.errs, fmt.Errorf("reached %s", r.Backend))
					default:
						res.ok++
					}
				}
			}()
		}
		for gen := 1; gen <= syncs; gen++ {
			f.sync(ctx, scaleState(changed, gen)...)
			Expect(keys(hits(f.lab.Node, "tcp", netip.AddrPortFrom(scaleIP(changed), 80), 1))).
				To(Equal(backendsOf((changed+gen)%backends)), "the changed service after Sync %d", gen)
		}
		close(stop)
		var res result
		for range watchers {
			r := <-done
			res.ok += r.ok
			res.errs = append(res.errs, r.errs...)
		}
		Expect(res.errs).To(BeEmpty(), "connections to the unchanged service %d during %d Syncs (%d succeeded)", watched, syncs, res.ok)
		Expect(res.ok).To(BeNumerically(">", 0))
		Expect(netlab.Echo(conn, dialTimeout)).To(Succeed(), "the connection established before the Syncs")
	}, SpecTimeout(5*time.Minute))
}
