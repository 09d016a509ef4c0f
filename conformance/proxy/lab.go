package proxy

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

// Addresses of every lab. They live only inside the lab's own namespaces,
// so labs of concurrent specs (and the host) never see each other's.
var (
	// ClientIP is the client namespace's address; NodeClientIP is the
	// node's address on the client's link, which is also a node address
	// for NodePorts.
	ClientIP     = netip.MustParseAddr("10.250.0.2")
	NodeClientIP = netip.MustParseAddr("10.250.0.1")
	// ServiceCIDR is the range the suite takes ClusterIPs and
	// LoadBalancer/external IPs from; the node routes it towards the first
	// backend so that its own connections reach the output hooks.
	ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
)

// backends is how many backend namespaces a lab has.
const backends = 3

// backendIP is the address of backend i (0-based): 10.244.<i+1>.2, on a
// /24 of its own whose .1 is the node.
func backendIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 244, byte(i + 1), 2}) }

// nodeBackendIP is the node's address on backend i's link.
func nodeBackendIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 244, byte(i + 1), 1}) }

// lab is one spec's network: fresh network namespaces pinned under a
// temporary directory,
//
//	client 10.250.0.2 ── kl-c ── node ── kl-b0..2 ── backend i 10.244.<i+1>.2
//
// The node forwards (its own ip_forward) and is where the proxy programs.
// Each backend runs a TCP and a UDP server on the ports the spec asks for,
// answering with "backend=<addr:port> client=<peer address>".
type lab struct {
	dir          string
	Node, Client string
	Backends     []string
	mu           sync.Mutex
	closers      []func()
	wg           sync.WaitGroup
}

// newLab builds a lab; close removes it.
func newLab() (*lab, error) {
	dir, err := os.MkdirTemp("", "kubelab-proxy-suite-")
	if err != nil {
		return nil, err
	}
	l := &lab{dir: dir, Node: filepath.Join(dir, "node"), Client: filepath.Join(dir, "client")}
	for i := range backends {
		l.Backends = append(l.Backends, filepath.Join(dir, fmt.Sprintf("backend%d", i)))
	}
	for _, p := range l.namespaces() {
		if err := nsenter.Pin(p); err != nil {
			return nil, errors.Join(err, l.close())
		}
	}
	if err := l.build(); err != nil {
		return nil, errors.Join(err, l.close())
	}
	return l, nil
}

func (l *lab) namespaces() []string {
	return append([]string{l.Node, l.Client}, l.Backends...)
}

// close stops the servers and removes the namespaces (and with them every
// link, address, route, table and sysctl in them).
func (l *lab) close() error {
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

func (l *lab) build() error {
	type peer struct {
		name, ns string
		node     netip.Addr
		addr     netip.Addr
	}
	peers := []peer{{"kl-c", l.Client, NodeClientIP, ClientIP}}
	for i, b := range l.Backends {
		peers = append(peers, peer{fmt.Sprintf("kl-b%d", i), b, nodeBackendIP(i), backendIP(i)})
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
			if err := addAddr("eth0", netip.PrefixFrom(p.addr, 24)); err != nil {
				return err
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

// serve starts a TCP and a UDP server at port on every backend, until the
// lab is closed. A TCP server greets, then echoes until the peer closes.
func (l *lab) serve(port uint16) error {
	for i, ns := range l.Backends {
		ap := netip.AddrPortFrom(backendIP(i), port)
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
					_, _ = io.Copy(c, c)
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
	}
	return nil
}

// connSet holds a server's accepted connections so that close ends them.
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

// reply is what a backend answered.
type reply struct {
	// Backend is the address and port of the server that answered.
	Backend netip.AddrPort
	// Client is the source address the server saw.
	Client netip.Addr
}

// dial connects from namespace ns over "tcp" or "udp" to addr, within
// timeout, and returns the backend's reply. A refused connection is an
// error for which isRefused holds.
func dial(ns, network string, addr netip.AddrPort, timeout time.Duration) (reply, error) {
	var conn net.Conn
	err := nsenter.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout(network+"4", addr.String(), timeout)
		return err
	})
	if err != nil {
		return reply{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if network == "udp" {
		if _, err := conn.Write([]byte("hello\n")); err != nil {
			return reply{}, err
		}
	}
	return readReply(bufio.NewReader(conn))
}

func readReply(br *bufio.Reader) (reply, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return reply{}, err
	}
	var be, cl string
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "backend=%s client=%s", &be, &cl); err != nil {
		return reply{}, fmt.Errorf("reply %q: %w", line, err)
	}
	var r reply
	if r.Backend, err = netip.ParseAddrPort(be); err != nil {
		return reply{}, err
	}
	if r.Client, err = netip.ParseAddr(cl); err != nil {
		return reply{}, err
	}
	return r, nil
}

// open connects over TCP from ns to addr, reads the greeting and returns
// the open connection, which the backend echoes on.
func open(ns string, addr netip.AddrPort) (net.Conn, reply, error) {
	var conn net.Conn
	err := nsenter.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", addr.String(), dialTimeout)
		return err
	})
	if err != nil {
		return nil, reply{}, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(dialTimeout))
	r, err := readReply(bufio.NewReader(conn))
	if err != nil {
		conn.Close()
		return nil, reply{}, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, r, nil
}

// echo sends a line on c and checks that it comes back.
func echo(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
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

// isRefused reports whether err is a refused connection (a TCP reset or
// an ICMP unreachable), as opposed to a timeout.
func isRefused(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH)
}

// footprint is what the node namespace holds that a proxy could have
// installed: its nftables tables and every address of every link.
func (l *lab) footprint(ctx context.Context) ([]string, error) {
	var out []string
	err := nsenter.Do(l.Node, func() error {
		tables, err := exec.CommandContext(ctx, "nft", "list", "tables").Output()
		if err != nil {
			return fmt.Errorf("nft list tables: %w", err)
		}
		for _, line := range strings.Split(string(tables), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, "table "+line)
			}
		}
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
