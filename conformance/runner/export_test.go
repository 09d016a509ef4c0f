package runner

import "time"

// SetKillGrace sets how long an interrupted child has before it is killed,
// and returns a function restoring the old value.
func SetKillGrace(d time.Duration) (restore func()) {
	old := killGrace
	killGrace = d
	return func() { killGrace = old }
}
