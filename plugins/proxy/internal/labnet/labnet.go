// Package labnet builds the small network the proxy plugins' kernel tests
// run in: three fresh network namespaces pinned under a test's temporary
// directory — a node (where the proxy programs), a backend (the endpoints)
// and a client (outside traffic) — joined to the node by veth pairs:
//
//	client 10.250.0.2/24 ── kl-c ── node 10.250.0.1 | 10.244.0.1 ── kl-b ── backend 10.244.0.2-.4/24
//
// The node forwards (its own ip_forward, a per-namespace sysctl) and
// routes the service range 10.96.0.0/16 towards the backend, so that its
// own connections to a ClusterIP leave through the output hooks. Backend
// servers answer every TCP connection and UDP datagram with
// "backend=<their address> client=<the peer they saw>"; a TCP server then
// echoes what it receives until the client closes (Open keeps such a
// connection).
//
// Namespaces are entered only through nsenter.Do. Teardown removes the
// namespaces (and so every link, address, route and sysctl in them) and
// fails the test if the host's links, nftables tables or ip_forward
// changed.
package labnet

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
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubelab/kubelab/spec/nsenter"
)

// Addresses of the lab.
var (
	NodeBackendIP = netip.MustParseAddr("10.244.0.1")
	NodeClientIP  = netip.MustParseAddr("10.250.0.1")
	ClientIP      = netip.MustParseAddr("10.250.0.2")
	BackendIPs    = []netip.Addr{netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("10.244.0.3"), netip.MustParseAddr("10.244.0.4")}
	ServiceCIDR   = netip.MustParsePrefix("10.96.0.0/16")
)

// Lab is one built lab; its fields are the pinned namespace paths.
type Lab struct {
	Node, Backend, Client string
}

// New builds a lab for t, or skips t when not root. Teardown is registered
// with t.Cleanup.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	before := hostSnapshot(t)
	dir := t.TempDir()
	l := &Lab{Node: filepath.Join(dir, "node"), Backend: filepath.Join(dir, "backend"), Client: filepath.Join(dir, "client")}
	t.Cleanup(func() {
		for _, p := range []string{l.Node, l.Backend, l.Client} {
			if err := nsenter.Unpin(p); err != nil {
				t.Errorf("remove namespace: %v", err)
			}
		}
		if after := hostSnapshot(t); after != before {
			t.Errorf("the host changed:\nbefore: %s\nafter:  %s", before, after)
		}
	})
	for _, p := range []string{l.Node, l.Backend, l.Client} {
		if err := nsenter.Pin(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.build(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *Lab) build() error {
	backendFd, err := unix.Open(l.Backend, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(backendFd)
	clientFd, err := unix.Open(l.Client, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(clientFd)
	err = nsenter.Do(l.Node, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return err
		}
		if err := up("lo"); err != nil {
			return err
		}
		for _, v := range []struct {
			name, peer string
			fd         int
			addr       netip.Addr
		}{{"kl-b", "eth0", backendFd, NodeBackendIP}, {"kl-c", "eth0", clientFd, NodeClientIP}} {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.name}, PeerName: v.peer, PeerNamespace: netlink.NsFd(v.fd)}
			if err := netlink.LinkAdd(veth); err != nil {
				return fmt.Errorf("add veth %s: %w", v.name, err)
			}
			if err := addAddr(v.name, netip.PrefixFrom(v.addr, 24)); err != nil {
				return err
			}
			if err := up(v.name); err != nil {
				return err
			}
		}
		link, err := netlink.LinkByName("kl-b")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(ServiceCIDR)})
	})
	if err != nil {
		return fmt.Errorf("node namespace: %w", err)
	}
	side := func(path string, addrs []netip.Addr, gw netip.Addr) error {
		return nsenter.Do(path, func() error {
			if err := up("lo"); err != nil {
				return err
			}
			for _, a := range addrs {
				if err := addAddr("eth0", netip.PrefixFrom(a, 24)); err != nil {
					return err
				}
			}
			if err := up("eth0"); err != nil {
				return err
			}
			return netlink.RouteAdd(&netlink.Route{Gw: gw.AsSlice()})
		})
	}
	if err := side(l.Backend, BackendIPs, NodeBackendIP); err != nil {
		return fmt.Errorf("backend namespace: %w", err)
	}
	if err := side(l.Client, []netip.Addr{ClientIP}, NodeClientIP); err != nil {
		return fmt.Errorf("client namespace: %w", err)
	}
	return nil
}

func up(name string) error {
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

// Serve starts TCP and UDP servers on every backend address at port, until
// the test ends.
func (l *Lab) Serve(t testing.TB, port uint16) {
	t.Helper()
	var wg sync.WaitGroup
	var closers []func()
	var conns struct {
		sync.Mutex
		m []net.Conn
	}
	for _, a := range BackendIPs {
		ap := netip.AddrPortFrom(a, port)
		var ln net.Listener
		var pc net.PacketConn
		err := nsenter.Do(l.Backend, func() error {
			var err error
			if ln, err = net.Listen("tcp4", ap.String()); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp4", ap.String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		closers = append(closers, func() { ln.Close() }, func() { pc.Close() })
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					fmt.Fprintf(c, "backend=%s client=%s\n", ap, c.RemoteAddr().(*net.TCPAddr).IP)
					_, _ = io.Copy(c, c) // then echo, until the client closes
				}()
				conns.Lock()
				conns.m = append(conns.m, c)
				conns.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				fmt.Fprintf(writerTo{pc, from}, "backend=%s client=%s\n", ap, from.(*net.UDPAddr).IP)
			}
		}()
	}
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
		conns.Lock()
		for _, c := range conns.m {
			c.Close()
		}
		conns.Unlock()
		wg.Wait()
	})
}

type writerTo struct {
	pc net.PacketConn
	to net.Addr
}

func (w writerTo) Write(b []byte) (int, error) { return w.pc.WriteTo(b, w.to) }

// Reply is what a backend answered.
type Reply struct {
	// Backend is the address and port of the server that answered.
	Backend netip.AddrPort
	// Client is the source address the server saw.
	Client netip.Addr
}

// Dial connects from namespace ns (one of the lab's paths) to addr over
// network "tcp" or "udp", optionally from source address src, and returns
// the backend's reply. A refused connection is an error wrapping
// unix.ECONNREFUSED.
func (l *Lab) Dial(ns, network string, src netip.Addr, addr netip.AddrPort) (Reply, error) {
	return l.DialFrom(ns, network, netip.AddrPortFrom(src, 0), addr)
}

// DialFrom is Dial from source address and port src (an invalid address
// or a zero port: any).
func (l *Lab) DialFrom(ns, network string, src, addr netip.AddrPort) (Reply, error) {
	var conn net.Conn
	err := nsenter.Do(ns, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
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
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
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
	var r Reply
	var be, cl string
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "backend=%s client=%s", &be, &cl); err != nil {
		return Reply{}, fmt.Errorf("reply %q: %w", line, err)
	}
	if r.Backend, err = netip.ParseAddrPort(be); err != nil {
		return Reply{}, err
	}
	if r.Client, err = netip.ParseAddr(cl); err != nil {
		return Reply{}, err
	}
	return r, nil
}

// Open connects over TCP from namespace ns to addr, reads the greeting and
// returns the open connection, which the backend echoes on.
func (l *Lab) Open(ns string, addr netip.AddrPort) (net.Conn, Reply, error) {
	var conn net.Conn
	err := nsenter.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", addr.String(), 5*time.Second)
		return err
	})
	if err != nil {
		return nil, Reply{}, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := readReply(bufio.NewReader(conn))
	if err != nil {
		conn.Close()
		return nil, Reply{}, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, r, nil
}

// Echo sends a line on c and checks that it comes back within 5 s.
func Echo(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping\n" {
		return fmt.Errorf("echo %q, want ping", buf)
	}
	return nil
}

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

// IsRefused reports whether err is a refused connection (TCP reset or
// ICMP unreachable), as opposed to a timeout.
func IsRefused(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EHOSTUNREACH)
}

// NftTables lists the nftables tables of namespace ns ("ip name" lines).
func (l *Lab) NftTables(t testing.TB, ns string) []string {
	t.Helper()
	var out []byte
	err := nsenter.Do(ns, func() error {
		var err error
		out, err = exec.CommandContext(context.Background(), "nft", "list", "tables").Output()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return nonEmptyLines(string(out))
}

// Addrs lists the IPv4 addresses (as prefixes) of link name in namespace ns.
func (l *Lab) Addrs(t testing.TB, ns, name string) []string {
	t.Helper()
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
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
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

// hostSnapshot describes what a lab must not change on the host: links
// named like the lab's ("kl-"), proxy tables ("kubelab-proxy") and
// ip_forward. Other links and tables are left out, since other programs
// on the machine may change them meanwhile.
func hostSnapshot(t testing.TB) string {
	t.Helper()
	links, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range links {
		if strings.HasPrefix(k.Name, "kl-") {
			names = append(names, k.Name)
		}
	}
	slices.Sort(names)
	out, _ := exec.Command("nft", "list", "tables").Output()
	var tables []string
	for _, line := range nonEmptyLines(string(out)) {
		if strings.Contains(line, "kubelab-proxy") {
			tables = append(tables, line)
		}
	}
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return fmt.Sprintf("links=%v tables=%v ip_forward=%s", names, tables, strings.TrimSpace(string(fwd)))
}
