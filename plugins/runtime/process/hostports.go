package process

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/knftables"
)

// hostPortTable names the nftables table holding a runtime instance's host
// port rules; two runtimes (different instances) never share one.
func hostPortTable(instance string) string {
	return "kubelab-hostports-" + shortHash(instance)
}

// hostPort is one host port mapping of a sandbox, validated.
type hostPort struct {
	proto         string // "tcp", "udp" or "sctp"
	hostIP        string // "" for every local address
	hostPort      int32
	containerPort int32
}

// conflicts reports whether two mappings claim the same host socket.
func (h hostPort) conflicts(o hostPort) bool {
	return h.proto == o.proto && h.hostPort == o.hostPort && (h.hostIP == "" || o.hostIP == "" || h.hostIP == o.hostIP)
}

func (h hostPort) String() string {
	ip := h.hostIP
	if ip == "" {
		ip = "*"
	}
	return fmt.Sprintf("%s %s:%d", strings.ToUpper(h.proto), ip, h.hostPort)
}

// hostPortsOf validates the mappings of a sandbox config with a host port
// (those without one need no rule: the pod IP serves them).
func hostPortsOf(config *runtimeapi.PodSandboxConfig) ([]hostPort, error) {
	var out []hostPort
	for _, pm := range config.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		h := hostPort{hostPort: pm.GetHostPort(), containerPort: pm.GetContainerPort()}
		switch pm.GetProtocol() {
		case runtimeapi.Protocol_TCP:
			h.proto = "tcp"
		case runtimeapi.Protocol_UDP:
			h.proto = "udp"
		case runtimeapi.Protocol_SCTP:
			h.proto = "sctp"
		default:
			return nil, status.Errorf(codes.InvalidArgument, "port mapping: protocol %v is not supported", pm.GetProtocol())
		}
		if h.hostPort > 65535 || h.containerPort <= 0 || h.containerPort > 65535 {
			return nil, status.Errorf(codes.InvalidArgument, "port mapping %d->%d: ports must be in 1..65535", h.hostPort, h.containerPort)
		}
		if ip := pm.GetHostIp(); ip != "" && ip != "0.0.0.0" {
			p := net.ParseIP(ip)
			if p == nil || p.To4() == nil {
				return nil, status.Errorf(codes.InvalidArgument, "port mapping: host IP %q is not an IPv4 address (pods here are IPv4 only)", ip)
			}
			h.hostIP = p.To4().String()
		}
		for _, o := range out {
			if h.conflicts(o) {
				return nil, status.Errorf(codes.InvalidArgument, "port mapping: host port %s is mapped twice", h)
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// hostPorts publishes sandboxes' host ports: DNAT from the host's port to
// the pod's IP and container port, in an nftables table of the runtime's
// own. Connections arriving from outside pass its prerouting chain; those
// made on the host itself (127.0.0.1:hostPort included) its output chain.
// A connection from a loopback address is masqueraded to the host's address
// on the pod's link, whose route_localnet is set so that such a packet may
// leave through it. Each rule's comment is its sandbox's ID; the table
// exists only while some sandbox has a host port.
type hostPorts struct {
	table string

	mu    sync.Mutex
	owned map[string][]hostPort // by sandbox ID
	nft   knftables.Interface   // nil until first needed
}

func newHostPorts(instance string) *hostPorts {
	return &hostPorts{table: hostPortTable(instance), owned: map[string][]hostPort{}}
}

// reserve claims the host ports of a sandbox, failing with AlreadyExists
// when another sandbox holds one of them.
func (h *hostPorts) reserve(sandboxID string, ports []hostPort) error {
	if len(ports) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for other, theirs := range h.owned {
		if other == sandboxID {
			continue
		}
		for _, p := range ports {
			for _, q := range theirs {
				if p.conflicts(q) {
					return status.Errorf(codes.AlreadyExists, "host port %s is already mapped by sandbox %q", p, other)
				}
			}
		}
	}
	h.owned[sandboxID] = ports
	return nil
}

func (h *hostPorts) client() (knftables.Interface, error) {
	if h.nft == nil {
		nft, err := knftables.New(knftables.IPv4Family, h.table)
		if err != nil {
			return nil, fmt.Errorf("nftables: %w", err)
		}
		h.nft = nft
	}
	return h.nft, nil
}

// publish adds the DNAT rules of a sandbox's reserved ports to podIP.
func (h *hostPorts) publish(ctx context.Context, sandboxID, podIP string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ports := h.owned[sandboxID]
	if len(ports) == 0 {
		return nil
	}
	if net.ParseIP(podIP).To4() == nil {
		return fmt.Errorf("host ports need the pod's IPv4 address, have %q", podIP)
	}
	if err := allowLocalnetTo(podIP); err != nil {
		return err
	}
	nft, err := h.client()
	if err != nil {
		return err
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("kubelab process runtime: host ports of pod sandboxes")})
	tx.Add(&knftables.Chain{Name: "hostports"})
	for _, c := range []struct {
		name string
		hook knftables.BaseChainHook
		prio knftables.BaseChainPriority
	}{
		{"prerouting", knftables.PreroutingHook, knftables.DNATPriority},
		{"output", knftables.OutputHook, knftables.DNATPriority},
		{"postrouting", knftables.PostroutingHook, knftables.SNATPriority},
	} {
		tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(c.hook), Priority: knftables.PtrTo(c.prio)})
		if c.name != "postrouting" {
			// Rebuilt so that it is there once, whatever was before.
			tx.Flush(&knftables.Chain{Name: c.name})
			tx.Add(&knftables.Rule{Chain: c.name, Rule: "fib daddr type local jump hostports"})
		}
	}
	comment := sandboxID
	for _, p := range ports {
		match := ""
		if p.hostIP != "" {
			match = "ip daddr " + p.hostIP + " "
		}
		tx.Add(&knftables.Rule{Chain: "hostports", Comment: &comment, Rule: knftables.Concat(
			match, "meta l4proto", p.proto, "th dport", p.hostPort, "dnat to", net.JoinHostPort(podIP, fmt.Sprint(p.containerPort)))})
		tx.Add(&knftables.Rule{Chain: "postrouting", Comment: &comment, Rule: knftables.Concat(
			"ip saddr 127.0.0.0/8 ip daddr", podIP, "meta l4proto", p.proto, "th dport", p.containerPort, "ct status dnat masquerade")})
	}
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables table %s: %w", h.table, err)
	}
	return nil
}

// release removes a sandbox's rules and frees its ports; the table goes
// with the last sandbox that had host ports. It is idempotent.
func (h *hostPorts) release(ctx context.Context, sandboxID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.owned[sandboxID]; !ok {
		return nil
	}
	nft, err := h.client()
	if err != nil {
		return err
	}
	tx := nft.NewTransaction()
	if len(h.owned) == 1 {
		tx.Delete(&knftables.Table{})
	} else {
		for _, chain := range []string{"hostports", "postrouting"} {
			rules, err := nft.ListRules(ctx, chain)
			if err != nil && !knftables.IsNotFound(err) {
				return fmt.Errorf("nftables table %s: %w", h.table, err)
			}
			for _, rule := range rules {
				if rule.Comment != nil && *rule.Comment == sandboxID {
					tx.Delete(&knftables.Rule{Chain: chain, Handle: rule.Handle})
				}
			}
		}
	}
	if tx.NumOperations() > 0 {
		if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("nftables table %s: %w", h.table, err)
		}
	}
	delete(h.owned, sandboxID)
	return nil
}

// closeIfUnused deletes the table, if this runtime made one, when no
// sandbox has host ports (release normally did already).
func (h *hostPorts) closeIfUnused(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.owned) > 0 || h.nft == nil {
		return nil // in use, or never made by this runtime
	}
	tx := h.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := h.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("nftables table %s: %w", h.table, err)
	}
	return nil
}

// allowLocalnetTo sets route_localnet on the link that routes to podIP, so
// that a connection to 127.0.0.1:hostPort, once DNATed, may leave through
// it (the masquerade rule then gives it the link's address). The runtime's
// bridge is removed with its last sandbox, and the setting with it.
func allowLocalnetTo(podIP string) error {
	routes, err := netlink.RouteGet(net.ParseIP(podIP))
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("route to pod %s: %v", podIP, err)
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return fmt.Errorf("link to pod %s: %w", podIP, err)
	}
	p := filepath.Join("/proc/sys/net/ipv4/conf", link.Attrs().Name, "route_localnet")
	if err := os.WriteFile(p, []byte("1"), 0); err != nil {
		return fmt.Errorf("route_localnet of %s: %w", link.Attrs().Name, err)
	}
	return nil
}
