package kubelet

import (
	"testing"
	"time"
)

// TestBackoffFollowsUpstream walks a crash loop with upstream's numbers:
// the first restart is immediate, then 10 s, 20 s, 40 s ... capped at
// 5 min; ten minutes without a restart start over.
func TestBackoffFollowsUpstream(t *testing.T) {
	var p BackoffPolicy
	var e BackoffEntry
	ok := false
	now := t0
	if _, wait := p.Wait(e, ok, now); wait {
		t.Fatal("the first restart waited")
	}
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		e, ok = p.Next(e, ok, now), true
		if e.Delay != w*time.Second {
			t.Fatalf("restart %d: delay %s, want %ds", i+1, e.Delay, w)
		}
		until, wait := p.Wait(e, ok, now.Add(time.Second))
		if !wait || !until.Equal(now.Add(e.Delay)) {
			t.Fatalf("restart %d: Wait = %v, %v; want until %v", i+1, until, wait, now.Add(e.Delay))
		}
		now = until
		if _, wait := p.Wait(e, ok, now); wait {
			t.Fatalf("restart %d: still waiting when the delay ended", i+1)
		}
	}
	// Running for more than 2×max: the entry expires.
	later := now.Add(10*time.Minute + time.Second)
	if _, wait := p.Wait(e, ok, later); wait {
		t.Error("an expired entry still holds the restart")
	}
	if e = p.Next(e, ok, later); e.Delay != DefaultBackoffInitial {
		t.Errorf("after expiry the delay is %s, want %s", e.Delay, DefaultBackoffInitial)
	}
}

func TestBackoffIsShortenable(t *testing.T) {
	p := BackoffPolicy{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond}
	e := p.Next(BackoffEntry{}, false, t0)
	e = p.Next(e, true, t0)
	e = p.Next(e, true, t0)
	if e.Delay != 300*time.Millisecond {
		t.Errorf("delay %s, want the 300ms cap", e.Delay)
	}
	if _, wait := p.Wait(e, true, t0.Add(601*time.Millisecond)); wait {
		t.Error("entry did not expire after 2×Max")
	}
}
