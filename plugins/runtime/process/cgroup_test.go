package process

import (
	"os"
	"path/filepath"
	"testing"
)

// The cgroup code over fake cgroup directories: what is written for each
// version, and what is read back.
func TestCgroupFilesV1AndV2(t *testing.T) {
	res := cgroupResources{CPUShares: 1024, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20}
	cases := []struct {
		name  string
		v2    bool
		dirs  []string
		files map[string]string // path relative to the temp dir -> content
	}{
		{"v1", false, []string{"cpu", "memory", "cpuacct"}, map[string]string{
			"cpu/cpu.shares": "1024", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000",
			"memory/memory.limit_in_bytes": "67108864",
		}},
		{"v2", true, []string{""}, map[string]string{
			"cpu.weight": "39", "cpu.max": "50000 100000", "memory.max": "67108864",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := map[string]string{}
			for _, d := range c.dirs {
				paths[d] = filepath.Join(dir, d)
				if err := os.MkdirAll(paths[d], 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for f := range c.files { // cgroup files exist before they are written
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := &cgroupRoot{v2: c.v2}
			if err := r.apply(paths, res); err != nil {
				t.Fatal(err)
			}
			for f, want := range c.files {
				if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != want {
					t.Errorf("%s = %q, want %q", f, b, want)
				}
			}
		})
	}
}

func TestCgroupStatsV2(t *testing.T) {
	dir := t.TempDir()
	for f, content := range map[string]string{
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\n",
		"memory.current": "1000000\n",
		"memory.stat":    "anon 600000\ninactive_file 300000\n",
		"memory.events":  "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := readCgroupStats(map[string]string{"": dir})
	if err != nil {
		t.Fatal(err)
	}
	want := cgroupStats{CPUNanos: 1500000, MemoryUsage: 1000000, MemoryWorkingSet: 700000, OOMKills: 1}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
}
