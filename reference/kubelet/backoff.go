package kubelet

import "time"

// Upstream's crash-loop back-off: the first restart is immediate, then
// each restart waits twice as long as the one before, from 10 s up to
// 5 min; a container that ran 10 min (twice the maximum) without
// restarting starts over at 10 s.
const (
	// DefaultBackoffInitial is the first back-off delay.
	DefaultBackoffInitial = 10 * time.Second
	// DefaultBackoffMax is the longest back-off delay.
	DefaultBackoffMax = 5 * time.Minute
)

// BackoffPolicy is the crash-loop back-off's delays. The zero value means
// upstream's defaults.
type BackoffPolicy struct {
	// Initial is the delay after the second start; DefaultBackoffInitial
	// when 0.
	Initial time.Duration
	// Max caps the delay; DefaultBackoffMax when 0. An entry not renewed
	// for 2×Max expires.
	Max time.Duration
}

// BackoffEntry is one container's back-off state: the delay that applies
// to its next restart, from LastUpdate.
type BackoffEntry struct {
	// Delay is how long a restart waits after LastUpdate.
	Delay time.Duration
	// LastUpdate is when the container was last restarted.
	LastUpdate time.Time
}

func (p BackoffPolicy) initial() time.Duration {
	if p.Initial <= 0 {
		return DefaultBackoffInitial
	}
	return p.Initial
}

func (p BackoffPolicy) max() time.Duration {
	if p.Max <= 0 {
		return DefaultBackoffMax
	}
	return p.Max
}

func (p BackoffPolicy) expired(e BackoffEntry, now time.Time) bool {
	return now.Sub(e.LastUpdate) > 2*p.max()
}

// Wait reports whether restarting a container whose back-off state is e
// (ok false: none yet) must wait at now, and until when.
func (p BackoffPolicy) Wait(e BackoffEntry, ok bool, now time.Time) (until time.Time, wait bool) {
	if !ok || p.expired(e, now) {
		return time.Time{}, false
	}
	until = e.LastUpdate.Add(e.Delay)
	return until, now.Before(until)
}

// Next returns the state after restarting at now a container whose state
// was e (ok false: none): the first restart (or one after expiry) sets the
// initial delay, each later one doubles it up to Max.
func (p BackoffPolicy) Next(e BackoffEntry, ok bool, now time.Time) BackoffEntry {
	if !ok || p.expired(e, now) {
		return BackoffEntry{Delay: p.initial(), LastUpdate: now}
	}
	d := 2 * e.Delay
	if d > p.max() {
		d = p.max()
	}
	return BackoffEntry{Delay: d, LastUpdate: now}
}
