package process

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubelab/kubelab/spec/nsenter"
)

// Network wires a pod sandbox's network namespace into the node's network.
// The runtime calls Setup once the namespace exists with its loopback up,
// and Teardown when the sandbox is stopped or removed. Implementations must
// be safe for concurrent use by different sandboxes.
type Network interface {
	// Setup connects the namespace pinned at netnsPath and returns the
	// pod's IP address ("" when the pod gets none).
	Setup(ctx context.Context, sandboxID, netnsPath string) (ip string, err error)
	// Teardown undoes Setup. It is idempotent: tearing down a sandbox that
	// was never set up, or whose namespace is gone, succeeds.
	Teardown(ctx context.Context, sandboxID, netnsPath string) error
}

// BridgeNetwork is the default Network: a Linux bridge in the runtime's own
// network namespace holding the pod CIDR's first address as the gateway, and
// per sandbox a veth pair whose pod end is eth0 with the next free address
// and a default route through the gateway. Allocations are files under
// StateDir (one per address, naming its sandbox), so they survive a restart
// of the runtime. The bridge is removed with the last sandbox.
type BridgeNetwork struct {
	// Bridge is the bridge's interface name (at most 15 bytes).
	Bridge string
	// CIDR is the pod address range; the first host address is the gateway.
	CIDR *net.IPNet
	// StateDir holds the address allocations.
	StateDir string

	mu sync.Mutex // serialises bridge creation/removal and allocation
}

// bridgeName derives a bridge name from the runtime instance.
func bridgeName(instance string) string {
	return "klbr" + shortHash(instance)
}

// vethName is the host end of a sandbox's veth pair.
func vethName(sandboxID string) string {
	return "klv" + shortHash(sandboxID)
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

func ipAdd(ip net.IP, n uint32) net.IP {
	v := binary.BigEndian.Uint32(ip.To4()) + n
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, v)
	return out
}

func (b *BridgeNetwork) gateway() *net.IPNet {
	return &net.IPNet{IP: ipAdd(b.CIDR.IP.Mask(b.CIDR.Mask), 1), Mask: b.CIDR.Mask}
}

// ensureBridge creates the bridge with the gateway address, if missing.
func (b *BridgeNetwork) ensureBridge() (netlink.Link, error) {
	br, err := netlink.LinkByName(b.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("bridge %q: %w", b.Bridge, err)
		}
		la := netlink.NewLinkAttrs()
		la.Name = b.Bridge
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %q: %w", b.Bridge, err)
		}
		if br, err = netlink.LinkByName(b.Bridge); err != nil {
			return nil, fmt.Errorf("bridge %q: %w", b.Bridge, err)
		}
	}
	if err := netlink.AddrReplace(br, &netlink.Addr{IPNet: b.gateway()}); err != nil {
		return nil, fmt.Errorf("bridge %q address: %w", b.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bridge %q up: %w", b.Bridge, err)
	}
	return br, nil
}

// allocate reserves the lowest free address for sandboxID (or returns the
// one it already has).
func (b *BridgeNetwork) allocate(sandboxID string) (net.IP, error) {
	if err := os.MkdirAll(b.StateDir, 0o755); err != nil {
		return nil, err
	}
	if ip := b.lookup(sandboxID); ip != nil {
		return ip, nil
	}
	ones, bits := b.CIDR.Mask.Size()
	if bits != 32 || ones > 30 {
		return nil, fmt.Errorf("pod CIDR %s: need an IPv4 range of at least 4 addresses", b.CIDR)
	}
	size := uint32(1) << (bits - ones)
	base := b.CIDR.IP.Mask(b.CIDR.Mask)
	for i := uint32(2); i < size-1; i++ {
		ip := ipAdd(base, i)
		f, err := os.OpenFile(filepath.Join(b.StateDir, ip.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(sandboxID)
		f.Close()
		return ip, err
	}
	return nil, fmt.Errorf("pod CIDR %s is exhausted", b.CIDR)
}

// lookup returns the address allocated to sandboxID, or nil.
func (b *BridgeNetwork) lookup(sandboxID string) net.IP {
	ents, _ := os.ReadDir(b.StateDir)
	for _, e := range ents {
		if owner, err := os.ReadFile(filepath.Join(b.StateDir, e.Name())); err == nil && string(owner) == sandboxID {
			return net.ParseIP(e.Name())
		}
	}
	return nil
}

// Setup implements Network.
func (b *BridgeNetwork) Setup(ctx context.Context, sandboxID, netnsPath string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br, err := b.ensureBridge()
	if err != nil {
		return "", err
	}
	ip, err := b.allocate(sandboxID)
	if err != nil {
		return "", err
	}
	nsf, err := os.Open(netnsPath)
	if err != nil {
		return "", err
	}
	defer nsf.Close()
	host := vethName(sandboxID)
	if old, err := netlink.LinkByName(host); err == nil {
		_ = netlink.LinkDel(old) // from an interrupted Setup
	}
	la := netlink.NewLinkAttrs()
	la.Name = host
	la.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(nsf.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("create veth %q: %w", host, err)
	}
	hl, err := netlink.LinkByName(host)
	if err == nil {
		err = netlink.LinkSetUp(hl)
	}
	if err != nil {
		return "", fmt.Errorf("veth %q up: %w", host, err)
	}
	gw := b.gateway()
	err = nsenter.Do(netnsPath, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: b.CIDR.Mask}}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s: %w", ip, err)
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return err
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.IP}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw.IP, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("configure eth0 of sandbox %q: %w", sandboxID, err)
	}
	return ip.String(), nil
}

// Teardown implements Network.
func (b *BridgeNetwork) Teardown(ctx context.Context, sandboxID, netnsPath string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	if l, err := netlink.LinkByName(vethName(sandboxID)); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete veth: %w", err))
		}
	}
	if ip := b.lookup(sandboxID); ip != nil {
		if err := os.Remove(filepath.Join(b.StateDir, ip.String())); err != nil {
			errs = append(errs, err)
		}
	}
	if ents, _ := os.ReadDir(b.StateDir); len(ents) == 0 {
		if br, err := netlink.LinkByName(b.Bridge); err == nil {
			if err := netlink.LinkDel(br); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %q: %w", b.Bridge, err))
			}
		}
	}
	return errors.Join(errs...)
}

// NoNetwork gives sandboxes only their loopback interface.
type NoNetwork struct{}

// Setup implements Network: nothing to do, no IP.
func (NoNetwork) Setup(context.Context, string, string) (string, error) { return "", nil }

// Teardown implements Network: nothing to do.
func (NoNetwork) Teardown(context.Context, string, string) error { return nil }

// loopbackUp sets lo up inside the namespace at netnsPath.
func loopbackUp(netnsPath string) error {
	return nsenter.Do(netnsPath, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
}

// sysctlScope tells which namespace a sysctl belongs to: "net", "ipc", or
// "" for one that is not namespaced (and so cannot be set for a pod).
func sysctlScope(key string) string {
	switch {
	case strings.HasPrefix(key, "net."):
		return "net"
	case strings.HasPrefix(key, "kernel.shm"), strings.HasPrefix(key, "kernel.msg"),
		key == "kernel.sem", strings.HasPrefix(key, "fs.mqueue."):
		return "ipc"
	}
	return ""
}

// sysctlPath is a sysctl's file under /proc/sys.
func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// applyNetSysctls writes the net.* sysctls inside the namespace at
// netnsPath (a thread in a network namespace sees that namespace's
// /proc/sys/net).
func applyNetSysctls(netnsPath string, sysctls map[string]string) error {
	return nsenter.Do(netnsPath, func() error {
		for k, v := range sysctls {
			if sysctlScope(k) != "net" {
				continue
			}
			if err := os.WriteFile(sysctlPath(k), []byte(v), 0); err != nil {
				return status.Errorf(codes.InvalidArgument, "sysctl %s=%s: %v", k, v, err)
			}
		}
		return nil
	})
}
