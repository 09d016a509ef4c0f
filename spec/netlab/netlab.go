// Package netlab builds the test topologies, in network namespaces, that
// the proxy conformance suite and the proxy plugins' own kernel tests run
// in. A lab is fresh network namespaces pinned under a temporary directory
// of its own — a node (where a proxy programs), a client (outside traffic)
// and one or more backends (the endpoints) — each joined to the node by a
// veth pair:
//
//	client 10.250.0.2/24 ── kl-c ── node ── kl-b<i> ── backend i (its addresses, one /24)
//
// The node takes the .1 of each link's /24, forwards (its own ip_forward,
// a per-namespace sysctl) and routes ServiceCIDR towards the first
// backend, so that its own connections to a ClusterIP leave through the
// output hooks. Backend servers (Serve) answer every TCP connection and
// UDP datagram with "backend=<their address:port> client=<the peer they
// saw>"; a TCP server then echoes what it receives until the client closes
// (Open keeps such a connection).
//
// Namespaces are entered only through nsenter.Do. Close stops the servers
// and removes the namespaces, and with them every link, address, route,
// nftables table and sysctl in them: teardown leaves nothing on the host
// (HostSnapshot lets a test check that).
//
// Nothing here fails a test: every function returns errors, so that both
// Ginkgo suites and plain tests can wrap it.
package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubelab/kubelab/spec/nsenter"
)

// Addresses every lab has. They live only inside the lab's own namespaces,
// so concurrent labs (and the host) never see each other's.
var (
	// ClientIP is the client namespace's address; NodeClientIP is the
	// node's address on the client's link, which is also a node address
	// for NodePorts.
	ClientIP     = netip.MustParseAddr("10.250.0.2")
	NodeClientIP = netip.MustParseAddr("10.250.0.1")
	// ServiceCIDR is the range tests take ClusterIPs and
	// LoadBalancer/external IPs from; the node routes it towards the first
	// backend.
	ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
)

// Lab is one built lab. Its exported fields are the pinned namespace
// paths and the backends' addresses; they must not be changed.
type Lab struct {
	dir string
	// Node and Client are the node's and the client's namespace paths.
	Node, Client string
	// Backends are the backend namespace paths; BackendAddrs[i] are the
	// addresses of Backends[i].
	Backends     []string
	BackendAddrs [][]netip.Addr

	mu      sync.Mutex
	closers []func()
	wg      sync.WaitGroup
}

// New builds a lab with one backend namespace per element of backends,
// holding those addresses (IPv4, all in one /24 whose .1 is the node's
// address on that backend's link; at least one backend with at least one
// address). The caller must Close it, also when a test fails.
func New(backends ...[]netip.Addr) (*Lab, error) {
	if len(backends) == 0 {
		return nil, errors.New("netlab: a lab needs at least one backend")
	}
	for i, addrs := range backends {
		if len(addrs) == 0 {
			return nil, fmt.Errorf("netlab: backend %d has no address", i)
		}
		for _, a := range addrs {
			if !a.Is4() || netip.PrefixFrom(a, 24).Masked() != netip.PrefixFrom(addrs[0], 24).Masked() {
				return nil, fmt.Errorf("netlab: backend %d address %s is not IPv4 in the /24 of %s", i, a, addrs[0])
			}
		}
	}
	dir, err := os.MkdirTemp("", "kubelab-netlab-")
	if err != nil {
		return nil, err
	}
	l := &Lab{dir: dir, Node: filepath.Join(dir, "node"), Client: filepath.Join(dir, "client")}
	for i, addrs := range backends {
		l.Backends = append(l.Backends, filepath.Join(dir, fmt.Sprintf("backend%d", i)))
		l.BackendAddrs = append(l.BackendAddrs, slices.Clone(addrs))
	}
	for _, p := range l.namespaces() {
		if err := nsenter.Pin(p); err != nil {
			return nil, errors.Join(err, l.Close())
		}
	}
	if err := l.build(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// NodeBackendIP is the node's address on backend i's link: the .1 of the
// backend's /24.
func (l *Lab) NodeBackendIP(i int) netip.Addr {
	b := l.BackendAddrs[i][0].As4()
	b[3] = 1
	return netip.AddrFrom4(b)
}

func (l *Lab) namespaces() []string {
	return append([]string{l.Node, l.Client}, l.Backends...)
}

// Close stops the servers and removes the namespaces (and with them every
// link, address, route, table and sysctl in them) and the directory they
// were pinned in.
func (l *Lab) Close() error {
	l.mu.Lock()
	for _, c := range l.closers {
		c()
	}
	l.closers = nil
	l.mu.Unlock()
	l.wg.Wait()
	var errs []error
	for _, p := range l.namespaces() {
		errs = append(errs, nsenter.Unpin(p))
	}
	errs = append(errs, os.RemoveAll(l.dir))
	return errors.Join(errs...)
}

func (l *Lab) build() error {
	type peer struct {
		name, ns string
		node     netip.Addr
		addrs    []netip.Addr
	}
	peers := []peer{{"kl-c", l.Client, NodeClientIP, []netip.Addr{ClientIP}}}
	for i, b := range l.Backends {
		peers = append(peers, peer{fmt.Sprintf("kl-b%d", i), b, l.NodeBackendIP(i), l.BackendAddrs[i]})
	}
	fds := make([]int, len(peers))
	for i, p := range peers {
		fd, err := unix.Open(p.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		fds[i] = fd
	}
	err := nsenter.Do(l.Node, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return err
		}
		if err := linkUp("lo"); err != nil {
			return err
		}
		for i, p := range peers {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fds[i])}
			if err := netlink.LinkAdd(veth); err != nil {
				return fmt.Errorf("add veth %s: %w", p.name, err)
			}
			if err := addAddr(p.name, netip.PrefixFrom(p.node, 24)); err != nil {
				return err
			}
			if err := linkUp(p.name); err != nil {
				return err
			}
		}
		link, err := netlink.LinkByName("kl-b0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(ServiceCIDR)})
	})
	if err != nil {
		return fmt.Errorf("node namespace: %w", err)
	}
	for _, p := range peers {
		err := nsenter.Do(p.ns, func() error {
			if err := linkUp("lo"); err != nil {
				return err
			}
			for _, a := range p.addrs {
				if err := addAddr("eth0", netip.PrefixFrom(a, 24)); err != nil {
					return err
				}
			}
			if err := linkUp("eth0"); err != nil {
				return err
			}
			return netlink.RouteAdd(&netlink.Route{Gw: p.node.AsSlice()})
		})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", filepath.Base(p.ns), err)
		}
	}
	return nil
}

func linkUp(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return netlink.LinkSetUp(link)
}

func addAddr(name string, p netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(p)})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Serve starts a TCP and a UDP server at port on every address of every
// backend, until the lab is closed.
func (l *Lab) Serve(port uint16) error {
	for i, ns := range l.Backends {
		for _, a := range l.BackendAddrs[i] {
			if err := l.serve(ns, netip.AddrPortFrom(a, port)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Lab) serve(ns string, ap netip.AddrPort) error {
	var ln net.Listener
	var pc net.PacketConn
	err := nsenter.Do(ns, func() error {
		var err error
		if ln, err = net.Listen("tcp4", ap.String()); err != nil {
			return err
		}
		if pc, err = net.ListenPacket("udp4", ap.String()); err != nil {
			ln.Close()
		}
		return err
	})
	if err != nil {
		return err
	}
	var conns connSet
	l.mu.Lock()
	l.closers = append(l.closers, func() { ln.Close(); pc.Close(); conns.closeAll() })
	l.mu.Unlock()
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !conns.add(c) {
				c.Close()
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer c.Close()
				fmt.Fprintf(c, "backend=%s client=%s\n", ap, c.RemoteAddr().(*net.TCPAddr).IP)
				_, _ = io.Copy(c, c) // then echo, until the client closes
			}()
		}
	}()
	go func() {
		defer l.wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(fmt.Appendf(nil, "backend=%s client=%s\n", ap, from.(*net.UDPAddr).IP), from)
		}
	}()
	return nil
}

// connSet holds a server's accepted connections so that Close ends them.
type connSet struct {
	mu     sync.Mutex
	closed bool
	m      []net.Conn
}

func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m = append(s.m, c)
	return true
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.m {
		c.Close()
	}
}

// Reply is what a backend answered.
type Reply struct {
	// Backend is the address and port of the server that answered.
	Backend netip.AddrPort
	// Client is the source address the server saw.
	Client netip.Addr
}

// Dial connects from namespace ns over "tcp" or "udp" to addr, within
// timeout, and returns the backend's reply. A refused connection is an
// error for which IsRefused holds.
func Dial(ns, network string, addr netip.AddrPort, timeout time.Duration) (Reply, error) {
	return DialFrom(ns, network, netip.AddrPort{}, addr, timeout)
}

// DialFrom is Dial from source address and port src (an invalid address:
// any address; a zero port: any port).
func DialFrom(ns, network string, src, addr netip.AddrPort, timeout time.Duration) (Reply, error) {
	var conn net.Conn
	err := nsenter.Do(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if src.Addr().IsValid() || src.Port() != 0 {
			var ip net.IP
			if src.Addr().IsValid() {
				ip = src.Addr().AsSlice()
			}
			if network == "tcp" {
				d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(src.Port())}
			} else {
				d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(src.Port())}
			}
		}
		var err error
		conn, err = d.Dial(network+"4", addr.String())
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if network == "udp" {
		if _, err := conn.Write([]byte("hello\n")); err != nil {
			return Reply{}, err
		}
	}
	return readReply(bufio.NewReader(conn))
}

func readReply(br *bufio.Reader) (Reply, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return Reply{}, err
	}
	var be, cl string
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "backend=%s client=%s", &be, &cl); err != nil {
		return Reply{}, fmt.Errorf("reply %q: %w", line, err)
	}
	var r Reply
	if r.Backend, err = netip.ParseAddrPort(be); err != nil {
		return Reply{}, err
	}
	if r.Client, err = netip.ParseAddr(cl); err != nil {
		return Reply{}, err
	}
	return r, nil
}

// Open connects over TCP from namespace ns to addr within timeout, reads
// the greeting and returns the open connection, which the backend echoes
// on. The caller closes it.
func Open(ns string, addr netip.AddrPort, timeout time.Duration) (net.Conn, Reply, error) {
	var conn net.Conn
	err := nsenter.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", addr.String(), timeout)
		return err
	})
	if err != nil {
		return nil, Reply{}, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	r, err := readReply(bufio.NewReader(conn))
	if err != nil {
		conn.Close()
		return nil, Reply{}, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, r, nil
}

// Echo sends a line on c (a connection from Open) and checks that it
// comes back within timeout.
func Echo(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping\n" {
		return fmt.Errorf("echo %q, want %q", buf, "ping\n")
	}
	return nil
}

// IsRefused reports whether err is a refused connection (a TCP reset or
// an ICMP unreachable), as opposed to a timeout.
func IsRefused(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH)
}

// NftTables lists the nftables tables of namespace ns ("ip name" lines),
// sorted.
func NftTables(ctx context.Context, ns string) ([]string, error) {
	var out []byte
	err := nsenter.Do(ns, func() error {
		var err error
		out, err = exec.CommandContext(ctx, "nft", "list", "tables").Output()
		if err != nil {
			return fmt.Errorf("nft list tables: %w", err)
		}
		return nil
	})
	return nonEmptyLines(string(out)), err
}

// Addrs lists the IPv4 addresses (as prefixes) of link name in namespace
// ns, sorted.
func Addrs(ns, name string) ([]string, error) {
	var out []string
	err := nsenter.Do(ns, func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		for _, a := range addrs {
			out = append(out, a.IPNet.String())
		}
		return err
	})
	slices.Sort(out)
	return out, err
}

// Footprint is what the node namespace holds that a proxy could have
// installed: its nftables tables and every address of every link, sorted.
func (l *Lab) Footprint(ctx context.Context) ([]string, error) {
	tables, err := NftTables(ctx, l.Node)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tables {
		out = append(out, "table "+t)
	}
	err = nsenter.Do(l.Node, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, link := range links {
			out = append(out, "link "+link.Attrs().Name)
			addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				out = append(out, fmt.Sprintf("addr %s %s %s", link.Attrs().Name, a.IPNet, a.Label))
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// HostSnapshot describes, in the host's own network namespace, what labs
// must not change: links named like the labs' ("kl-"), the nftables
// tables whose line contains tables (a proxy's table name or suffix) and
// ip_forward. Other links and tables are left out, since other programs
// on the machine may change them meanwhile. Two equal snapshots taken
// before and after a test show that its labs left nothing behind.
func HostSnapshot(tables string) (string, error) {
	links, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	var names []string
	for _, k := range links {
		if strings.HasPrefix(k.Name, "kl-") {
			names = append(names, k.Name)
		}
	}
	slices.Sort(names)
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return "", fmt.Errorf("nft list tables: %w", err)
	}
	var ours []string
	for _, line := range nonEmptyLines(string(out)) {
		if strings.Contains(line, tables) {
			ours = append(ours, line)
		}
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("links=%v tables=%q ip_forward=%s", names, ours, strings.TrimSpace(string(fwd))), nil
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}
