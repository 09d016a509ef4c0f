// Package userspace is a spec.Proxy without netfilter: Go TCP and UDP
// forwarders listening on the services' virtual addresses, for hosts
// without nftables and for rootless use.
//
// Virtual addresses. Cluster, external and LoadBalancer IPs are assigned as /32
// addresses to the loopback link "lo" of the node's network namespace, so
// that the kernel delivers their traffic locally, with the address label
// "lo:<label>" (option "label", default "klsvc"): the label is how the proxy
// knows its addresses again, also after a crash, and how Cleanup removes
// exactly those. (A dummy link would do as well, but needs the kernel's
// dummy module, which not every host has.) NodePorts listen on the node
// addresses, which are local already. IPv4 only: address labels are an
// IPv4 feature, so IPv6 service addresses are skipped with
// spec.ErrUnsupported.
//
// Balancing is round robin over the usable endpoints, skipping an endpoint
// that refuses the connection. ClientIP session affinity remembers, per
// listener, the endpoint each client address last used, until the timeout.
// A virtual port without usable endpoints has no listener, so the kernel
// refuses its connections (TCP reset, ICMP port unreachable).
//
// What it cannot do: keep the client's source address (every connection
// to an endpoint comes from the node), so it does not claim
// spec.CapProxyExternalTrafficLocal; hairpin works because of that.
package userspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/nsenter"
)

// Name is the plugin's registry name.
const Name = "userspace"

// udpIdle is how long a UDP flow without packets keeps its backend socket.
const udpIdle = 30 * time.Second

// Plugin returns the registration of the userspace proxy.
//
// Options:
//   - label: the suffix of the label of its addresses on lo (default
//     "klsvc"; at most 12 characters); give each proxy sharing a network
//     namespace its own;
//   - netns: path of a network namespace in which to listen, dial and hold
//     the addresses, instead of the process's own.
func Plugin() spec.ProxyPlugin {
	return spec.ProxyPlugin{
		Name:        Name,
		Description: "Go TCP/UDP forwarding on service IPs (labelled addresses on lo); no netfilter",
		Capabilities: spec.Capabilities{
			spec.CapProxyUDP, spec.CapProxyNodePort, spec.CapProxyLoadBalancer, spec.CapProxyExternalIPs,
			spec.CapProxySessionAffinity, spec.CapProxyInternalTrafficLocal, spec.CapProxyHairpin,
		},
		New: func(ctx context.Context, cfg spec.ProxyConfig) (spec.Proxy, error) { return New(cfg) },
	}
}

var validLabel = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,11}$`)

// Proxy is the userspace spec.Proxy. Sync and Cleanup must not run
// concurrently (spec.Proxy's callers never do); the forwarding goroutines
// run on their own.
type Proxy struct {
	label string // full address label, "lo:<option label>"
	netns string
	log   *slog.Logger

	// listeners by Listener.Key, and stopped listeners whose established
	// connections go on; touched only by Sync and Cleanup.
	listeners map[string]*listener
	draining  []*listener
}

var _ spec.Proxy = (*Proxy)(nil)

// New builds a userspace proxy. It installs nothing until Sync.
func New(cfg spec.ProxyConfig) (*Proxy, error) {
	p := &Proxy{log: cfg.Logger, listeners: map[string]*listener{}}
	label := "klsvc"
	for k, v := range cfg.Options {
		switch k {
		case "label":
			label = v
		case "netns":
			p.netns = v
		default:
			return nil, fmt.Errorf("userspace proxy: unknown option %q: %w", k, spec.ErrInvalid)
		}
	}
	if !validLabel.MatchString(label) {
		return nil, fmt.Errorf("userspace proxy: address label %q: %w", label, spec.ErrInvalid)
	}
	p.label = "lo:" + label
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// do runs fn in the proxy's network namespace.
func (p *Proxy) do(fn func() error) error {
	if p.netns == "" {
		return fn()
	}
	return nsenter.Do(p.netns, fn)
}

// Sync assigns the virtual addresses, opens new listeners, hands changed
// endpoints to existing ones, and only then stops listeners and removes
// addresses that are gone, so a failure leaves the previous service
// working. Established connections are closed only when their endpoint is
// no longer in the state at all.
func (p *Proxy) Sync(ctx context.Context, state spec.ProxyState) error {
	want, cerr := Compute(state)
	var errs []error
	err := p.do(func() error {
		lo, ours, err := p.addresses()
		if err != nil {
			return err
		}
		for _, a := range want.Addresses {
			if slices.Contains(ours, a) {
				continue
			}
			if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: hostNet(a), Label: p.label}); err != nil {
				return fmt.Errorf("add %s to lo as %q: %w", a, p.label, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("userspace proxy: %w", err)
	}
	for key, l := range want.Listeners {
		if cur, ok := p.listeners[key]; ok {
			cur.setTarget(l)
			continue
		}
		nl, err := p.listen(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s for %s: %w", key, l.Service, err))
			continue
		}
		p.listeners[key] = nl
	}
	// A listener that is gone stops accepting, but its established
	// connections go on as long as their endpoint is in the state.
	for key, cur := range p.listeners {
		if _, ok := want.Listeners[key]; !ok {
			cur.stop()
			p.draining = append(p.draining, cur)
			delete(p.listeners, key)
		}
	}
	known := func(ep netip.AddrPort) bool { return want.Known[ep] }
	for _, cur := range p.listeners {
		cur.prune(known, false)
	}
	p.draining = slices.DeleteFunc(p.draining, func(ln *listener) bool {
		if ln.prune(known, false) {
			ln.wg.Wait()
			return true
		}
		return false
	})
	err = p.do(func() error { return p.removeAddresses(want.Addresses) })
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("userspace proxy: %w", errors.Join(append(errs, cerr)...))
	}
	return cerr
}

// addresses returns lo and the addresses on it labelled as the proxy's.
// It runs in the proxy's namespace.
func (p *Proxy) addresses() (netlink.Link, []netip.Addr, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("link lo: %w", err)
	}
	addrs, err := netlink.AddrList(lo, netlink.FAMILY_V4)
	if err != nil {
		return nil, nil, fmt.Errorf("addresses of lo: %w", err)
	}
	var ours []netip.Addr
	for _, a := range addrs {
		if a.Label == p.label {
			ip, _ := netip.AddrFromSlice(a.IP)
			ours = append(ours, ip.Unmap())
		}
	}
	return lo, ours, nil
}

// removeAddresses removes the proxy's addresses on lo except keep. It runs
// in the proxy's namespace.
func (p *Proxy) removeAddresses(keep []netip.Addr) error {
	lo, ours, err := p.addresses()
	if err != nil {
		return err
	}
	for _, a := range ours {
		if slices.Contains(keep, a) {
			continue
		}
		if err := netlink.AddrDel(lo, &netlink.Addr{IPNet: hostNet(a), Label: p.label}); err != nil {
			return fmt.Errorf("remove %s (%q) from lo: %w", a, p.label, err)
		}
	}
	return nil
}

// Cleanup closes every listener and connection and removes every address
// on lo with the proxy's label.
func (p *Proxy) Cleanup(ctx context.Context) error {
	for key, l := range p.listeners {
		l.close()
		delete(p.listeners, key)
	}
	for _, l := range p.draining {
		l.close()
	}
	p.draining = nil
	if err := p.do(func() error { return p.removeAddresses(nil) }); err != nil {
		return fmt.Errorf("userspace proxy: %w", err)
	}
	return nil
}

func hostNet(a netip.Addr) *net.IPNet {
	a = a.Unmap()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// listener is one open socket with its forwarding goroutines.
type listener struct {
	p      *Proxy
	target atomic.Pointer[Listener]
	next   atomic.Uint64 // round robin position

	mu       sync.Mutex // guards affinity, conns, closed
	affinity map[netip.Addr]sticky
	// conns are the open connections (both sides) by the endpoint they
	// go to (the zero AddrPort while the endpoint is being chosen).
	conns  map[io.Closer]netip.AddrPort
	closed bool

	sock io.Closer
	wg   sync.WaitGroup
}

type sticky struct {
	ep   netip.AddrPort
	last time.Time
}

func (p *Proxy) listen(l Listener) (*listener, error) {
	ln := &listener{p: p, affinity: map[netip.Addr]sticky{}, conns: map[io.Closer]netip.AddrPort{}}
	ln.target.Store(&l)
	var tl net.Listener
	var pc net.PacketConn
	err := p.do(func() error {
		var err error
		if l.Protocol == "tcp" {
			tl, err = net.Listen("tcp", l.Addr.String())
		} else {
			pc, err = net.ListenPacket("udp", l.Addr.String())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	ln.wg.Add(1)
	if tl != nil {
		ln.sock = tl
		go ln.serveTCP(tl)
	} else {
		ln.sock = pc
		go ln.serveUDP(pc)
	}
	return ln, nil
}

func (ln *listener) setTarget(l Listener) {
	ln.target.Store(&l)
	ln.mu.Lock()
	for ip, s := range ln.affinity {
		if !slices.Contains(l.Endpoints, s.ep) {
			delete(ln.affinity, ip)
		}
	}
	ln.mu.Unlock()
}

// close stops accepting, closes every open connection and waits for the
// goroutines.
func (ln *listener) close() {
	ln.stop()
	ln.prune(nil, true)
	ln.wg.Wait()
}

// stop closes the listening socket: no new connections (for UDP, no more
// datagrams either way). Established TCP connections go on.
func (ln *listener) stop() {
	ln.mu.Lock()
	ln.closed = true
	ln.sock.Close()
	if _, udp := ln.sock.(net.PacketConn); udp {
		// Replies leave through the listening socket: the flows are over.
		for c := range ln.conns {
			c.Close()
		}
	}
	ln.mu.Unlock()
}

// prune closes the connections whose endpoint keep rejects, and reports
// whether none is left. A connection still choosing its endpoint (accepted,
// dialing) is left alone unless all: it was accepted before this Sync and
// goes on, like an established one — closing it would fail a client of a
// service the Sync did not even change.
func (ln *listener) prune(keep func(netip.AddrPort) bool, all bool) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for c, ep := range ln.conns {
		if all || (ep.IsValid() && !keep(ep)) {
			c.Close()
		}
	}
	return len(ln.conns) == 0
}

// track registers c, going to ep, to be closed by close or prune; it
// returns false (and closes c) when the listener is stopped already.
func (ln *listener) track(c io.Closer, ep netip.AddrPort) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed {
		c.Close()
		return false
	}
	ln.conns[c] = ep
	return true
}

// retarget records that the tracked c now goes to ep.
func (ln *listener) retarget(c io.Closer, ep netip.AddrPort) {
	ln.mu.Lock()
	if _, ok := ln.conns[c]; ok {
		ln.conns[c] = ep
	}
	ln.mu.Unlock()
}

func (ln *listener) untrack(c io.Closer) {
	ln.mu.Lock()
	delete(ln.conns, c)
	ln.mu.Unlock()
	c.Close()
}

// order returns the endpoints to try for a client, first choice first.
func (ln *listener) order(client netip.Addr) []netip.AddrPort {
	t := ln.target.Load()
	eps := t.Endpoints
	start := int(ln.next.Add(1)-1) % len(eps)
	out := append(slices.Clone(eps[start:]), eps[:start]...)
	if t.Affinity > 0 {
		ln.mu.Lock()
		s, ok := ln.affinity[client]
		ln.mu.Unlock()
		if ok && time.Since(s.last) < t.Affinity && slices.Contains(eps, s.ep) {
			i := slices.Index(out, s.ep)
			out = append([]netip.AddrPort{s.ep}, slices.Delete(out, i, i+1)...)
		}
	}
	return out
}

func (ln *listener) remember(client netip.Addr, ep netip.AddrPort) {
	if ln.target.Load().Affinity > 0 {
		ln.mu.Lock()
		ln.affinity[client] = sticky{ep: ep, last: time.Now()}
		ln.mu.Unlock()
	}
}

// dial connects to the first endpoint of order(client) that accepts.
func (ln *listener) dial(network string, client netip.Addr) (net.Conn, netip.AddrPort, error) {
	var errs []error
	for _, ep := range ln.order(client) {
		var c net.Conn
		err := ln.p.do(func() error {
			var err error
			c, err = net.DialTimeout(network, ep.String(), 5*time.Second)
			return err
		})
		if err == nil {
			ln.remember(client, ep)
			return c, ep, nil
		}
		errs = append(errs, err)
	}
	return nil, netip.AddrPort{}, errors.Join(errs...)
}

func (ln *listener) serveTCP(tl net.Listener) {
	defer ln.wg.Done()
	for {
		c, err := tl.Accept()
		if err != nil {
			return
		}
		if !ln.track(c, netip.AddrPort{}) {
			continue
		}
		ln.wg.Add(1)
		go func() {
			defer ln.wg.Done()
			defer ln.untrack(c)
			client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			be, ep, err := ln.dial("tcp", client)
			if err != nil {
				ln.p.log.Info("no endpoint answered", "service", ln.target.Load().Service, "err", err)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // reset, so the client fails fast
				}
				return
			}
			ln.retarget(c, ep)
			if !ln.track(be, ep) {
				return
			}
			defer ln.untrack(be)
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(be, c)
			go pipe(c, be)
			<-done
			<-done
		}()
	}
}

// serveUDP forwards datagrams: each client address gets its own socket to
// an endpoint, whose replies are sent back from the virtual address.
func (ln *listener) serveUDP(pc net.PacketConn) {
	defer ln.wg.Done()
	type flow struct {
		be   net.Conn
		last atomic.Int64
	}
	flows := map[netip.AddrPort]*flow{}
	var flowsMu sync.Mutex // guards flows
	// open starts a flow for client: a socket to an endpoint and a
	// goroutine sending its replies back from the virtual address.
	open := func(client netip.AddrPort, from net.Addr) *flow {
		be, ep, err := ln.dial("udp", client.Addr().Unmap())
		if err != nil || !ln.track(be, ep) {
			return nil
		}
		f := &flow{be: be}
		f.last.Store(time.Now().UnixNano())
		flowsMu.Lock()
		flows[client] = f
		flowsMu.Unlock()
		ln.wg.Add(1)
		go func() {
			defer ln.wg.Done()
			defer func() {
				flowsMu.Lock()
				if flows[client] == f {
					delete(flows, client)
				}
				flowsMu.Unlock()
				ln.untrack(be)
			}()
			rb := make([]byte, 64<<10)
			for {
				_ = be.SetReadDeadline(time.Now().Add(udpIdle))
				m, err := be.Read(rb)
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < udpIdle {
						continue
					}
					return
				}
				if _, err := pc.WriteTo(rb[:m], from); err != nil {
					return
				}
			}
		}()
		return f
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		client := from.(*net.UDPAddr).AddrPort()
		flowsMu.Lock()
		f := flows[client]
		flowsMu.Unlock()
		if f == nil {
			if f = open(client, from); f == nil {
				continue
			}
		}
		f.last.Store(time.Now().UnixNano())
		_, err = f.be.Write(buf[:n])
		if errors.Is(err, net.ErrClosed) {
			// The flow's endpoint left the service (Sync pruned it): this
			// datagram starts a new flow.
			flowsMu.Lock()
			if flows[client] == f {
				delete(flows, client)
			}
			flowsMu.Unlock()
			if f = open(client, from); f == nil {
				continue
			}
			_, err = f.be.Write(buf[:n])
		}
		if err != nil && !errors.Is(err, unix.ECONNREFUSED) {
			ln.p.log.Debug("udp forward", "err", err)
		}
	}
}
