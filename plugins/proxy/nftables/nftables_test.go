package nftables

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kubelab/kubelab/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ep(addr, node string, ready bool) spec.Endpoint {
	return spec.Endpoint{Addr: ip(addr), Port: 8080, NodeName: node, Ready: ready, Serving: ready}
}

// testState is one node's state with every kind of service port.
func testState() spec.ProxyState {
	return spec.ProxyState{
		NodeName:      "node-a",
		NodeAddresses: []netip.Addr{ip("192.168.1.1"), ip("192.168.1.1")},
		Services: []spec.ServicePort{
			{Namespace: "ns", Name: "web", PortName: "http", ClusterIPs: []netip.Addr{ip("10.96.0.10")}, Protocol: spec.ProtocolTCP, Port: 80,
				Endpoints: []spec.Endpoint{ep("10.244.1.2", "node-a", true), ep("10.244.2.2", "node-b", true), ep("10.244.1.3", "node-a", false)}},
			{Namespace: "ns", Name: "empty", ClusterIPs: []netip.Addr{ip("10.96.0.11")}, Protocol: spec.ProtocolTCP, Port: 80, NodePort: 30080},
			{Namespace: "ns", Name: "dns", PortName: "dns", ClusterIPs: []netip.Addr{ip("10.96.0.12")}, Protocol: spec.ProtocolUDP, Port: 53,
				SessionAffinityTimeout: 10 * time.Second, Endpoints: []spec.Endpoint{ep("10.244.2.5", "node-b", true)}},
			{Namespace: "ns", Name: "lb", ClusterIPs: []netip.Addr{ip("10.96.0.13")}, LoadBalancerIPs: []netip.Addr{ip("172.18.255.1")},
				Protocol: spec.ProtocolTCP, Port: 443, NodePort: 30443, ExternalTrafficPolicy: spec.TrafficPolicyLocal,
				Endpoints: []spec.Endpoint{ep("10.244.2.6", "node-b", true)}},
			{Namespace: "ns", Name: "itp", ClusterIPs: []netip.Addr{ip("10.96.0.15")}, Protocol: spec.ProtocolTCP, Port: 80,
				InternalTrafficPolicy: spec.TrafficPolicyLocal, Endpoints: []spec.Endpoint{ep("10.244.2.8", "node-b", true)}},
			{Namespace: "ns", Name: "np", ClusterIPs: []netip.Addr{ip("10.96.0.14")}, ExternalIPs: []netip.Addr{ip("203.0.113.5")}, Protocol: spec.ProtocolTCP, Port: 80, NodePort: 30081,
				Endpoints: []spec.Endpoint{ep("10.244.1.7", "node-a", true)}},
		},
	}
}

func TestComputeRules(t *testing.T) {
	rs, err := Compute(testState())
	if err != nil {
		t.Fatal(err)
	}
	svcIPs := rs.Maps[mapServiceIPs].Elements
	for key, want := range map[string]string{
		"10.96.0.10 . tcp . 80":  "goto service-ns/web/tcp/http",
		"10.96.0.12 . udp . 53":  "goto service-ns/dns/udp/dns",
		"10.96.0.13 . tcp . 443": "goto service-ns/lb/tcp/443",
	} {
		if svcIPs[key] != want {
			t.Errorf("service-ips[%q] = %q, want %q", key, svcIPs[key], want)
		}
	}
	if _, ok := svcIPs["10.96.0.11 . tcp . 80"]; ok {
		t.Errorf("a service without endpoints is in service-ips")
	}
	if got := rs.Maps[mapNoEndpointServices].Elements["10.96.0.11 . tcp . 80"]; got != "goto reject-chain" {
		t.Errorf("service without endpoints: no-endpoint-services verdict %q, want reject", got)
	}
	if got := rs.Maps[mapNoEndpointNodePort].Elements["tcp . 30080"]; got != "goto reject-chain" {
		t.Errorf("nodeport without endpoints: verdict %q, want reject", got)
	}
	// eTP Local with the only endpoint on another node: external traffic is
	// dropped, internal traffic still balanced.
	if got := rs.Maps[mapNoEndpointServices].Elements["172.18.255.1 . tcp . 443"]; got != "drop" {
		t.Errorf("LB IP with eTP Local and no local endpoint: verdict %q, want drop", got)
	}
	if got := rs.Maps[mapNoEndpointNodePort].Elements["tcp . 30443"]; got != "drop" {
		t.Errorf("NodePort with eTP Local and no local endpoint: verdict %q, want drop", got)
	}
	if got := svcIPs["203.0.113.5 . tcp . 80"]; got != "goto external-ns/np/tcp/80" {
		t.Errorf("external IP verdict %q", got)
	}
	if got := rs.Maps[mapServiceNodePorts].Elements["tcp . 30081"]; got != "goto external-ns/np/tcp/80" {
		t.Errorf("nodeport verdict %q", got)
	}
	// The unready endpoint has no chain and is not balanced to.
	web := rs.Chains["service-ns/web/tcp/http"].Rules
	if want := []string{"numgen random mod 2 vmap { 0 : goto endpoint-ns/web/tcp/http__10.244.1.2/8080 , 1 : goto endpoint-ns/web/tcp/http__10.244.2.2/8080 }"}; !slices.Equal(web, want) {
		t.Errorf("service chain = %q, want %q", web, want)
	}
	if _, ok := rs.Chains["endpoint-ns/web/tcp/http__10.244.1.3/8080"]; ok {
		t.Errorf("unready endpoint has a chain")
	}
	// Hairpin and DNAT.
	epRules := rs.Chains["endpoint-ns/web/tcp/http__10.244.1.2/8080"].Rules
	if want := []string{"ip saddr 10.244.1.2 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.244.1.2:8080"}; !slices.Equal(epRules, want) {
		t.Errorf("endpoint chain = %q, want %q", epRules, want)
	}
	// External with Cluster policy masquerades; internal does not.
	if r := rs.Chains["external-ns/np/tcp/80"].Rules; len(r) == 0 || r[0] != "jump mark-for-masquerade" {
		t.Errorf("external chain (eTP Cluster) = %q, want masquerade first", r)
	}
	if r := rs.Chains["service-ns/np/tcp/80"].Rules; slices.Contains(r, "jump mark-for-masquerade") {
		t.Errorf("internal chain masquerades: %q", r)
	}
	// Affinity: a dynamic set with the timeout, looked up before balancing
	// and updated by the endpoint chain.
	set := "affinity-10s-ns/dns/udp/dns__10.244.2.5/8080"
	if s, ok := rs.Sets[set]; !ok || !s.Dynamic || s.Timeout != 10*time.Second {
		t.Errorf("affinity set %q = %+v", set, s)
	}
	if r := rs.Chains["service-ns/dns/udp/dns"].Rules; len(r) != 2 || r[0] != "ip saddr @"+set+" goto endpoint-ns/dns/udp/dns__10.244.2.5/8080" {
		t.Errorf("affinity service chain = %q", r)
	}
	if got := rs.Maps[mapNoEndpointServices].Elements["10.96.0.15 . tcp . 80"]; got != "drop" {
		t.Errorf("internalTrafficPolicy Local without a local endpoint: verdict %q, want drop", got)
	}
	if got := rs.Sets[setNodePortIPs].Elements; !slices.Equal(got, []string{"192.168.1.1"}) {
		t.Errorf("nodeport-ips = %v", got)
	}
}

func TestComputeTerminatingFallbackAndUnsupported(t *testing.T) {
	st := spec.ProxyState{NodeName: "a", Services: []spec.ServicePort{
		{Namespace: "ns", Name: "roll", ClusterIPs: []netip.Addr{ip("10.96.0.20"), ip("fd00::20")}, Protocol: spec.ProtocolTCP, Port: 80,
			Endpoints: []spec.Endpoint{{Addr: ip("10.244.0.9"), Port: 80, Serving: true, Terminating: true}, {Addr: ip("10.244.0.8"), Port: 80}}},
		{Namespace: "ns", Name: "weird", ClusterIPs: []netip.Addr{ip("10.96.0.21")}, Protocol: "QUIC", Port: 80},
	}}
	rs, err := Compute(st)
	if !errors.Is(err, spec.ErrUnsupported) || !strings.Contains(err.Error(), "fd00::20") || !strings.Contains(err.Error(), "QUIC") {
		t.Fatalf("err = %v, want ErrUnsupported naming the IPv6 address and the protocol", err)
	}
	if got := rs.Chains["service-ns/roll/tcp/80"].Rules; len(got) != 1 || !strings.Contains(got[0], "mod 1 ") || !strings.Contains(got[0], "10.244.0.9/80") {
		t.Errorf("terminating fallback chain = %q", got)
	}
}

// TestGolden applies the test state to knftables' fake and compares the
// table with testdata/ruleset.nft.
func TestGolden(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, "kubelab-proxy-node-a")
	p := NewWithInterface(fake, "kubelab-proxy-node-a", nil)
	if err := p.Sync(context.Background(), testState()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "ruleset.nft")
	got := fake.Dump()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("ruleset differs from %s (go test -update to rewrite):\n%s", golden, got)
	}
}

func TestIncrementalSync(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.IPv4Family, "t")
	rec := &recorder{Interface: fake}
	p := NewWithInterface(rec, "t", nil)
	st := testState()
	if err := p.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	// Same state again: nothing but the idempotent "add table".
	if err := p.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if n := rec.last.NumOperations(); n != 1 {
		t.Errorf("re-sync of the same state: %d operations, want 1:\n%s", n, rec.last)
	}
	before := fake.Dump()
	// One endpoint of one service becomes unready: only that service's
	// objects change.
	st.Services[0].Endpoints[1].Ready = false
	if err := p.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	tx := rec.last.String()
	for _, line := range strings.Split(strings.TrimSpace(tx), "\n") {
		if !strings.Contains(line, "ns/web/") && line != "add table ip t" {
			t.Errorf("one-service change touched something else: %q", line)
		}
	}
	if !strings.Contains(tx, "delete chain ip t endpoint-ns/web/tcp/http__10.244.2.2/8080") {
		t.Errorf("stale endpoint chain not deleted:\n%s", tx)
	}
	// Incremental result equals a full rewrite of the same state.
	full := knftables.NewFake(knftables.IPv4Family, "t")
	if err := NewWithInterface(full, "t", nil).Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sortedLines(fake.Dump()), sortedLines(full.Dump())) {
		t.Errorf("incremental table differs from a full sync:\n%s\nvs\n%s", fake.Dump(), full.Dump())
	}
	// Removing every service converges too, and differs from before.
	if err := p.Sync(ctx, spec.ProxyState{NodeName: "node-a"}); err != nil {
		t.Fatal(err)
	}
	empty := knftables.NewFake(knftables.IPv4Family, "t")
	_ = NewWithInterface(empty, "t", nil).Sync(ctx, spec.ProxyState{NodeName: "node-a"})
	if !slices.Equal(sortedLines(fake.Dump()), sortedLines(empty.Dump())) || fake.Dump() == before {
		t.Errorf("after removing every service:\n%s\nwant\n%s", fake.Dump(), empty.Dump())
	}
}

func TestFailedTransactionRewritesNext(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.IPv4Family, "t")
	rec := &recorder{Interface: fake}
	p := NewWithInterface(rec, "t", nil)
	if err := p.Sync(ctx, testState()); err != nil {
		t.Fatal(err)
	}
	before := fake.Dump()
	rec.fail = errors.New("injected")
	st := testState()
	st.Services = st.Services[1:]
	if err := p.Sync(ctx, st); !errors.Is(err, rec.fail) {
		t.Fatalf("Sync = %v, want the injected error", err)
	}
	if fake.Dump() != before {
		t.Errorf("a failed transaction changed the table")
	}
	rec.fail = nil
	if err := p.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.last.String(), "delete table ip t") {
		t.Errorf("sync after a failure is not a full rewrite:\n%s", rec.last)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if tables, _ := fake.List(ctx, "chain"); len(tables) != 0 || fake.Table != nil {
		t.Errorf("Cleanup left the table: %v", fake.Dump())
	}
}

func TestTableName(t *testing.T) {
	if n, err := TableName(spec.ProxyConfig{NodeName: "node-1"}); err != nil || n != "kubelab-proxy-node-1" {
		t.Errorf("TableName = %q, %v", n, err)
	}
	if n, err := TableName(spec.ProxyConfig{NodeName: "x", Options: map[string]string{"table-suffix": "c2-n1"}}); err != nil || n != "kubelab-proxy-c2-n1" {
		t.Errorf("TableName = %q, %v", n, err)
	}
	if _, err := TableName(spec.ProxyConfig{NodeName: "bad name"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("bad suffix: %v", err)
	}
}

// recorder keeps the last transaction and can fail Run without applying it.
type recorder struct {
	Interface
	last *knftables.Transaction
	fail error
}

func (r *recorder) Run(ctx context.Context, tx *knftables.Transaction) error {
	r.last = tx
	if r.fail != nil {
		return r.fail
	}
	return r.Interface.Run(ctx, tx)
}

// TestGoldenIsValidNft has the real nft parse and check the golden ruleset
// (nft --check changes nothing). It needs root and the nft command.
func TestGoldenIsValidNft(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for nft --check")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("no nft command")
	}
	if out, err := exec.Command(nft, "--check", "-f", filepath.Join("testdata", "ruleset.nft")).CombinedOutput(); err != nil {
		t.Fatalf("nft --check: %v\n%s", err, out)
	}
}

// manyServices is a state of n services with 10 ready endpoints each.
func manyServices(n int) spec.ProxyState {
	st := spec.ProxyState{NodeName: "a", NodeAddresses: []netip.Addr{ip("192.168.1.1")}}
	for i := range n {
		sp := spec.ServicePort{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), Protocol: spec.ProtocolTCP, Port: 80,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})}}
		for j := range 10 {
			sp.Endpoints = append(sp.Endpoints, spec.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 128 + byte(i>>8), byte(i), byte(j + 1)}), Port: 8080, Ready: true, Serving: true})
		}
		st.Services = append(st.Services, sp)
	}
	return st
}

// BenchmarkSyncOneChange measures a sync of one changed endpoint among
// 10 000 services × 10 endpoints: compute and diff, not the apply (the
// transactions are built but not run).
func BenchmarkSyncOneChange(b *testing.B) {
	ctx := context.Background()
	rec := &recorder{Interface: discard{knftables.NewFake(knftables.IPv4Family, "t")}}
	p := NewWithInterface(rec, "t", nil)
	st := manyServices(10000)
	if err := p.Sync(ctx, st); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		st.Services[i%len(st.Services)].Endpoints[0].Ready = i%2 == 0
		if err := p.Sync(ctx, st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rec.last.NumOperations()), "ops/sync")
}

// discard builds transactions and runs none.
type discard struct{ Interface }

func (discard) Run(context.Context, *knftables.Transaction) error { return nil }

// TestIncrementalMatchesFullUnderChurn applies random changes one after
// another; after each, the incrementally synced table must equal a table
// synced from scratch with the same state.
func TestIncrementalMatchesFullUnderChurn(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	fake := knftables.NewFake(knftables.IPv4Family, "t")
	p := NewWithInterface(fake, "t", nil)
	st := manyServices(30)
	for round := range 60 {
		sp := &st.Services[rnd.IntN(len(st.Services))]
		switch rnd.IntN(7) {
		case 0:
			ep := &sp.Endpoints[rnd.IntN(len(sp.Endpoints))]
			ep.Ready = !ep.Ready
		case 1:
			sp.Endpoints = sp.Endpoints[:rnd.IntN(len(sp.Endpoints)+1)]
			if len(sp.Endpoints) == 0 {
				sp.Endpoints = manyServices(1).Services[0].Endpoints
			}
		case 2:
			sp.SessionAffinityTimeout = time.Duration(rnd.IntN(3)) * time.Minute
		case 3:
			sp.NodePort = uint16(30000 + rnd.IntN(3)*1000 + round)
			sp.ExternalTrafficPolicy = []spec.TrafficPolicy{spec.TrafficPolicyCluster, spec.TrafficPolicyLocal}[rnd.IntN(2)]
		case 4:
			st.Services = slices.Delete(slices.Clone(st.Services), 0, 1)
		case 5:
			extra := manyServices(200).Services[100+round]
			extra.Endpoints[0].NodeName = "a"
			extra.InternalTrafficPolicy = spec.TrafficPolicyLocal
			st.Services = append(slices.Clone(st.Services), extra)
		case 6:
			st.NodeAddresses = []netip.Addr{ip(fmt.Sprintf("192.168.1.%d", rnd.IntN(3)+1))}
		}
		// Every round mutates st in place, as a caller may not: clone the
		// endpoint slices first so the proxy's kept inputs stay intact.
		next := st
		next.Services = slices.Clone(st.Services)
		for i := range next.Services {
			next.Services[i].Endpoints = slices.Clone(next.Services[i].Endpoints)
		}
		st = next
		if err := p.Sync(ctx, st); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		full := knftables.NewFake(knftables.IPv4Family, "t")
		if err := NewWithInterface(full, "t", nil).Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		// The fake lists elements in insertion order: compare as sets.
		if got, want := sortedLines(fake.Dump()), sortedLines(full.Dump()); !slices.Equal(got, want) {
			t.Fatalf("round %d: incremental table differs from a full sync:\n%s\nwant\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestComputeSkipsClashingPorts(t *testing.T) {
	st := spec.ProxyState{NodeName: "a", Services: []spec.ServicePort{
		{Namespace: "ns", Name: "one", ClusterIPs: []netip.Addr{ip("10.96.0.1")}, Protocol: spec.ProtocolTCP, Port: 80},
		{Namespace: "ns", Name: "two", ClusterIPs: []netip.Addr{ip("10.96.0.1")}, Protocol: spec.ProtocolTCP, Port: 80},
	}}
	rs, err := Compute(st)
	var partial *spec.PartialSyncError
	if !errors.As(err, &partial) || len(partial.Skipped) != 1 || partial.Skipped[0].Name != "two" {
		t.Fatalf("err = %v, want the second service skipped", err)
	}
	if got := rs.Maps[mapNoEndpointServices].Elements["10.96.0.1 . tcp . 80"]; got != "goto reject-chain" {
		t.Errorf("the first service lost its element: %q", got)
	}
}

func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return lines
}
