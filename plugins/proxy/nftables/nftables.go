// Package nftables is a spec.Proxy that programs the kernel with nftables,
// after the design of upstream kube-proxy's nftables mode
// (pkg/proxy/nftables): one table of its own, verdict maps from
// (address, protocol, port) to a per-service chain, random load balancing
// with `numgen random mod N vmap`, and one chain per endpoint doing the
// DNAT.
//
// Layout of the table "ip kubelab-proxy-<suffix>":
//
//	filter-{input,forward,output}  hooks at priority -110 (before DNAT), new
//	                               connections → service-endpoints-check
//	service-endpoints-check        @no-endpoint-services / @no-endpoint-nodeports
//	                               → reject-chain (TCP reset, else ICMP) or drop
//	nat-prerouting, nat-output     → services
//	services                       @service-ips, @nodeport-ips × @service-nodeports
//	service-<ns>/<name>/<proto>/<port>   internal traffic: affinity lookups,
//	                               then numgen random mod N → endpoint chains
//	external-<...>                 NodePort, external and LB IP traffic: masquerade
//	                               mark unless externalTrafficPolicy Local, then as above
//	endpoint-<...>__<ip>/<port>    hairpin masquerade mark, affinity update, DNAT
//	nat-postrouting → masquerading SNAT of marked packets (mark 0x4000)
//
// The ruleset is computed as data by Compute (pure: a fixed part and one
// fragment per service port) and applied by the Proxy, which reuses the
// fragments of unchanged service ports and diffs only the changed ones
// against what it applied last (plan), so that a change to one service
// touches only that service's chains and map elements. A transaction is
// atomic: if it fails, the kernel keeps the previous rules, and the next
// Sync rewrites the whole table. After a successful Sync, stale UDP
// conntrack entries are deleted (see conntrack.go).
//
// IPv4 only for now: IPv6 addresses are skipped and reported in a
// *spec.PartialSyncError.
package nftables

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/nsenter"
)

// Name is the plugin's registry name.
const Name = "nftables"

// Plugin returns the registration of the nftables proxy.
//
// Options:
//   - table-suffix: the table is "kubelab-proxy-<suffix>" (default: the
//     node name), so that several nodes or clusters sharing a network
//     namespace keep separate tables;
//   - netns: path of a network namespace (e.g. /run/netns/node-1) in which
//     to program the table instead of the process's own.
func Plugin() spec.ProxyPlugin {
	return spec.ProxyPlugin{
		Name:        Name,
		Description: "kernel DNAT with nftables (knftables): maps, random load balancing, affinity sets",
		Capabilities: spec.Capabilities{
			spec.CapProxyUDP, spec.CapProxyNodePort, spec.CapProxyLoadBalancer, spec.CapProxyExternalIPs,
			spec.CapProxySessionAffinity, spec.CapProxyInternalTrafficLocal,
			spec.CapProxyExternalTrafficLocal, spec.CapProxyHairpin,
		},
		New: func(ctx context.Context, cfg spec.ProxyConfig) (spec.Proxy, error) { return New(cfg) },
	}
}

// Interface is the part of knftables the Proxy uses; knftables.NewFake
// satisfies it.
type Interface interface {
	NewTransaction() *knftables.Transaction
	Run(ctx context.Context, tx *knftables.Transaction) error
}

// Proxy is the nftables spec.Proxy. It is not safe for concurrent use
// (spec.Proxy's callers never need that).
type Proxy struct {
	nft   Interface
	table string
	log   *slog.Logger
	// applied is what the last successful transaction installed, for
	// appliedNode; nil when unknown (first Sync, after a failure, after
	// Cleanup).
	applied     *parts
	appliedNode string
	// conntrack deletes stale UDP flows after a Sync; nil: none.
	conntrack Conntrack
}

var _ spec.Proxy = (*Proxy)(nil)

var validSuffix = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$`)

// TableName returns the table a proxy built with cfg uses, or an error
// wrapping spec.ErrInvalid for a bad suffix.
func TableName(cfg spec.ProxyConfig) (string, error) {
	suffix := cfg.NodeName
	if s, ok := cfg.Options["table-suffix"]; ok {
		suffix = s
	}
	if !validSuffix.MatchString(suffix) {
		return "", fmt.Errorf("nftables proxy: table suffix %q (from the node name or option table-suffix): %w", suffix, spec.ErrInvalid)
	}
	return "kubelab-proxy-" + suffix, nil
}

// New builds a Proxy on the real nftables of the host (or of option
// netns). It fails if the nft command is missing or not permitted.
func New(cfg spec.ProxyConfig) (*Proxy, error) {
	for k := range cfg.Options {
		if k != "table-suffix" && k != "netns" {
			return nil, fmt.Errorf("nftables proxy: unknown option %q: %w", k, spec.ErrInvalid)
		}
	}
	table, err := TableName(cfg)
	if err != nil {
		return nil, err
	}
	var nft Interface
	netns := cfg.Options["netns"]
	err = inNetns(netns, func() error {
		n, err := knftables.New(knftables.IPv4Family, table)
		nft = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nftables proxy: %w", err)
	}
	if netns != "" {
		nft = nsInterface{Interface: nft, path: netns}
	}
	p := NewWithInterface(nft, table, cfg.Logger)
	p.conntrack = netlinkConntrack{netns: netns}
	return p, nil
}

// NewWithInterface builds a Proxy over nft, which must be bound to the IPv4
// family and to table (knftables.NewFake(knftables.IPv4Family, table) in
// tests). It cleans up no conntrack entries.
func NewWithInterface(nft Interface, table string, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{nft: nft, table: table, log: log}
}

// Sync computes the ruleset of state and applies the difference from the
// last one in one transaction. If Compute skipped parts of the state, the
// rest is applied and the ErrUnsupported error is returned.
//
// Service ports whose input did not change since the last successful Sync
// are not computed again, and only what changed goes into the transaction:
// the cost of a Sync grows with the number of services (one comparison
// each), that of its transaction with the size of the change.
func (p *Proxy) Sync(ctx context.Context, state spec.ProxyState) error {
	var reuse func(string, spec.ServicePort) *fragment
	if p.applied != nil && p.appliedNode == state.NodeName {
		reuse = func(id string, sp spec.ServicePort) *fragment {
			if f := p.applied.frags[id]; f != nil && sameServicePort(f.sp, sp) {
				return f
			}
			return nil
		}
	}
	next := computeParts(state, reuse)
	cerr := next.err()
	tx := p.nft.NewTransaction()
	if p.applied == nil {
		plan(tx, nil, next.full())
	} else {
		before, after := changed(*p.applied, next)
		plan(tx, before, after)
	}
	start := time.Now()
	if err := p.nft.Run(ctx, tx); err != nil {
		p.applied = nil // unknown now: the next Sync rewrites the table
		return fmt.Errorf("nftables proxy: table %q: transaction of %d operations: %w", p.table, tx.NumOperations(), err)
	}
	p.log.Debug("nftables synced", "table", p.table, "operations", tx.NumOperations(), "took", time.Since(start))
	var prevFrags map[string]*fragment
	if p.applied != nil {
		prevFrags = p.applied.frags
	}
	p.applied, p.appliedNode = &next, state.NodeName
	if p.conntrack != nil {
		if stale := staleFlows(prevFrags, next.frags); len(stale) > 0 {
			n, err := p.conntrack.DeleteUDP(ctx, stale)
			if err != nil {
				// The rules are in place; stale UDP flows age out by themselves.
				p.log.Warn("nftables proxy: conntrack cleanup failed", "err", err)
			}
			p.log.Debug("stale UDP conntrack entries deleted", "count", n)
		}
	}
	return cerr
}

// Cleanup deletes the proxy's table, whether or not it exists.
func (p *Proxy) Cleanup(ctx context.Context) error {
	tx := p.nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	p.applied = nil
	if err := p.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables proxy: delete table %q: %w", p.table, err)
	}
	return nil
}

// Applied returns the ruleset the last successful Sync installed, or nil
// when unknown.
func (p *Proxy) Applied() *Ruleset {
	if p.applied == nil {
		return nil
	}
	return p.applied.full()
}

// changed returns what differs between prev and next as two partial
// rulesets for plan: the fixed part when the node addresses changed, and
// the fragments that are not the very same (reused) ones. Both always
// carry the shared maps' definitions (without their other elements), so
// that plan neither creates nor deletes them.
func changed(prev, next parts) (before, after *Ruleset) {
	if reflect.DeepEqual(prev.fixed, next.fixed) {
		before, after = mapsOnly(prev.fixed), mapsOnly(next.fixed)
	} else {
		before, after = prev.fixed.clone(), next.fixed.clone()
	}
	for id, f := range prev.frags {
		if next.frags[id] != f {
			before.merge(f.rs)
		}
	}
	for id, f := range next.frags {
		if prev.frags[id] != f {
			after.merge(f.rs)
		}
	}
	return before, after
}

// mapsOnly returns a ruleset with rs's maps, empty.
func mapsOnly(rs *Ruleset) *Ruleset {
	out := newRuleset()
	for name, m := range rs.Maps {
		out.Maps[name] = Map{Type: m.Type, Elements: map[string]string{}}
	}
	return out
}

// nsInterface runs every transaction inside a network namespace: the nft
// command is started from a thread that joined it.
type nsInterface struct {
	Interface
	path string
}

func (n nsInterface) Run(ctx context.Context, tx *knftables.Transaction) error {
	return nsenter.Do(n.path, func() error { return n.Interface.Run(ctx, tx) })
}

func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return nsenter.Do(path, fn)
}
