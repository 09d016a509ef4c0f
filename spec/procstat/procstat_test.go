package procstat_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/kubelab/kubelab/spec/procstat"
)

func TestParse(t *testing.T) {
	// A command name with spaces and parentheses, as proc(5) allows.
	line := "4242 (a (b) c) Z 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	s, err := procstat.Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procstat.Stat{PID: 4242, Comm: "a (b) c", State: 'Z', PPID: 17, StartTime: 987654}
	if s != want {
		t.Errorf("Parse = %+v, want %+v", s, want)
	}
	if !s.Exited() {
		t.Error("a zombie has not Exited")
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 2 3", "x (y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", "1 (y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 notanumber"} {
		if _, err := procstat.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestReadSelf(t *testing.T) {
	s, err := procstat.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() || s.PPID != os.Getppid() || s.Exited() || s.StartTime == 0 {
		t.Errorf("Read(self) = %+v", s)
	}
	if procstat.StartTime(os.Getpid()) != s.StartTime {
		t.Error("StartTime disagrees with Read")
	}
	if _, err := procstat.Read(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of no process: %v, want fs.ErrNotExist", err)
	}
}
