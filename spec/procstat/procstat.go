// Package procstat reads the fields of a Linux process's /proc/PID/stat
// that kubelab uses: state, parent and start time. The runtimes, the
// runtime suite and the tools all tell processes apart this way — the start
// time (clock ticks since boot) tells a process from a later one that got
// the same PID — so the parsing lives here once, under spec/, where plugins,
// conformance and tools may all import it. It imports no other kubelab
// package.
//
// The command name (field 2) is in parentheses and may itself hold spaces
// and parentheses, so fields are counted from the last ')'.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Stat is what kubelab reads from /proc/PID/stat (proc(5) numbers the
// fields from 1).
type Stat struct {
	// PID is field 1.
	PID int
	// Comm is field 2, the command name without its parentheses.
	Comm string
	// State is field 3: 'R' running, 'S' sleeping, 'Z' zombie, 'X' dead, ...
	State byte
	// PPID is field 4, the parent's PID.
	PPID int
	// StartTime is field 22, the start time in clock ticks after boot.
	StartTime uint64
}

// Exited reports whether the process has exited: a zombie (not yet
// reaped) or dead.
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// Parse parses the content of a /proc/PID/stat file.
func Parse(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("procstat: malformed stat %q", b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("procstat: malformed pid in %q", b)
	}
	f := bytes.Fields(b[closing+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("procstat: %d fields after the command in %q, want at least 20", len(f), b)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("procstat: malformed ppid %q", f[1])
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("procstat: malformed start time %q", f[19])
	}
	return Stat{PID: pid, Comm: string(b[open+1 : closing]), State: f[0][0], PPID: ppid, StartTime: start}, nil
}

// Read reads /proc/PID/stat. A process that does not exist gives an error
// wrapping fs.ErrNotExist.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(b)
}

// StartTime returns the start time of process pid (field 22), or 0 when
// there is no such process or its stat cannot be read.
func StartTime(pid int) uint64 {
	s, err := Read(pid)
	if err != nil {
		return 0
	}
	return s.StartTime
}
