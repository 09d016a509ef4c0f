package runner

import (
	"net"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

// TestFreePodCIDRAvoidsHostAddresses: a range holding a host address is
// never handed out while a free one can be drawn.
func TestFreePodCIDRAvoidsHostAddresses(t *testing.T) {
	// Every /24 of the range but 10.150.0.0/24 is in use.
	var used []net.IP
	for a := 150; a < 200; a++ {
		for b := range 256 {
			if a == 150 && b == 0 {
				continue
			}
			used = append(used, net.IPv4(10, byte(a), byte(b), 1))
		}
	}
	for range 3 {
		if got := freePodCIDR(used[:len(used)/2]); got == "" {
			t.Fatal("no range")
		} else if _, n, _ := net.ParseCIDR(got); n == nil || n.Contains(used[0]) || n.Contains(used[len(used)/2-1]) {
			t.Errorf("freePodCIDR = %s, holds a used address", got)
		}
	}
	opts := podNetworkOptions()
	if _, _, err := net.ParseCIDR(opts[spec.RuntimeOptionPodCIDR]); err != nil || len(opts) != 1 {
		t.Errorf("podNetworkOptions() = %v", opts)
	}
}
