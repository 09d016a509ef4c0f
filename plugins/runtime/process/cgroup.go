package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the runtime's cgroups live: one directory per
// controller hierarchy (cgroup v1) or a single directory (cgroup v2), each
// under the cgroup the runtime process itself is in, named after the runtime
// instance. It is immutable after newCgroupRoot.
type cgroupRoot struct {
	v2 bool
	// dirs maps a controller ("cpu", "cpuacct", "memory", "pids"; "" for
	// v2) to the runtime's directory in that hierarchy.
	dirs map[string]string
}

// v1Controllers are the cgroup v1 controllers the runtime uses when mounted.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// newCgroupRoot detects the cgroup version from the mounts and picks the
// runtime's directories; it creates nothing.
func newCgroupRoot(instance string) (*cgroupRoot, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	name := "kubelab-" + instance
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &cgroupRoot{v2: true, dirs: map[string]string{"": filepath.Join("/sys/fs/cgroup", own[""], name)}}, nil
	}
	r := &cgroupRoot{dirs: map[string]string{}}
	for _, c := range v1Controllers {
		mp, ok := mounts[c]
		if !ok {
			continue
		}
		r.dirs[c] = filepath.Join(mp, own[c], name)
	}
	if _, ok := r.dirs["memory"]; !ok {
		return nil, errors.New("no memory cgroup controller is mounted")
	}
	return r, nil
}

// cgroupMounts maps each v1 controller to its mount point.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 || sf[0] != "cgroup" {
			continue
		}
		for _, o := range strings.Split(sf[2], ",") {
			for _, c := range v1Controllers {
				if o == c {
					if _, dup := out[c]; !dup {
						out[c] = pf[4]
					}
				}
			}
		}
	}
	return out, sc.Err()
}

// ownCgroups maps each controller ("" for v2) to this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// cgroupResources are the limits the runtime applies; zero means unlimited.
type cgroupResources struct {
	CPUShares   int64 `json:"cpuShares,omitempty"`
	CPUQuota    int64 `json:"cpuQuota,omitempty"`
	CPUPeriod   int64 `json:"cpuPeriod,omitempty"`
	MemoryLimit int64 `json:"memoryLimit,omitempty"`
}

// create makes the cgroup rel (slash-separated, below the runtime's
// directory) in every hierarchy, applies res, and returns the absolute
// directories by controller.
func (r *cgroupRoot) create(rel string, res cgroupResources) (map[string]string, error) {
	paths := map[string]string{}
	for c, base := range r.dirs {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup %q: %w", p, err)
		}
		paths[c] = p
	}
	if r.v2 {
		// Enable the controllers from the runtime directory's parent down
		// to the leaf's parent (best effort: a parent with processes of its
		// own refuses, and then limits are not applied).
		base := r.dirs[""]
		dirs := []string{filepath.Dir(base), base}
		parts := strings.Split(rel, "/")
		d := base
		for _, s := range parts[:len(parts)-1] {
			d = filepath.Join(d, s)
			dirs = append(dirs, d)
		}
		for _, d := range dirs {
			_ = os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0)
		}
	}
	if err := r.apply(paths, res); err != nil {
		return paths, err
	}
	return paths, nil
}

func (r *cgroupRoot) apply(paths map[string]string, res cgroupResources) error {
	write := func(dir, file, v string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0); err != nil {
			return fmt.Errorf("cgroup %s=%s: %w", file, v, err)
		}
		return nil
	}
	if r.v2 {
		p := paths[""]
		if res.MemoryLimit > 0 {
			if err := write(p, "memory.max", strconv.FormatInt(res.MemoryLimit, 10)); err != nil {
				return err
			}
			_ = write(p, "memory.swap.max", "0")
		}
		if res.CPUShares > 0 {
			w := 1 + ((res.CPUShares-2)*9999)/262142
			if err := write(p, "cpu.weight", strconv.FormatInt(max(1, min(w, 10000)), 10)); err != nil {
				return err
			}
		}
		if res.CPUQuota > 0 {
			period := res.CPUPeriod
			if period == 0 {
				period = 100000
			}
			if err := write(p, "cpu.max", fmt.Sprintf("%d %d", res.CPUQuota, period)); err != nil {
				return err
			}
		}
		return nil
	}
	if res.MemoryLimit > 0 {
		if err := write(paths["memory"], "memory.limit_in_bytes", strconv.FormatInt(res.MemoryLimit, 10)); err != nil {
			return err
		}
		// No swap beyond the limit, when swap accounting exists.
		_ = write(paths["memory"], "memory.memsw.limit_in_bytes", strconv.FormatInt(res.MemoryLimit, 10))
	}
	if p, ok := paths["cpu"]; ok {
		if res.CPUShares > 0 {
			if err := write(p, "cpu.shares", strconv.FormatInt(max(2, res.CPUShares), 10)); err != nil {
				return err
			}
		}
		if res.CPUQuota > 0 {
			if res.CPUPeriod > 0 {
				if err := write(p, "cpu.cfs_period_us", strconv.FormatInt(res.CPUPeriod, 10)); err != nil {
					return err
				}
			}
			if err := write(p, "cpu.cfs_quota_us", strconv.FormatInt(res.CPUQuota, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

// addToCgroups moves process pid into every cgroup in paths.
func addToCgroups(paths map[string]string, pid int) error {
	for _, p := range paths {
		if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("add pid %d to cgroup %q: %w", pid, p, err)
		}
	}
	return nil
}

// removeCgroups kills whatever is left in the cgroups and removes them.
// Missing directories are not an error.
func removeCgroups(paths map[string]string) error {
	var errs []error
	for _, p := range paths {
		if err := removeCgroupTree(p); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes the cgroup p and every cgroup below it,
// deepest first, killing what still runs in them. Child cgroups are left
// by a runtime that crashed between creating a container's cgroups and
// recording them; they belong to p's sandbox all the same.
func removeCgroupTree(p string) error {
	entries, err := os.ReadDir(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeCgroupTree(filepath.Join(p, e.Name())))
		}
	}
	for i := 0; i < 100; i++ {
		err = os.Remove(p)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return errors.Join(errs...)
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		if b, rerr := os.ReadFile(filepath.Join(p, "cgroup.procs")); rerr == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, _ := strconv.Atoi(f); pid > 0 {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.Join(append(errs, err)...)
}

// removeEmptyDir removes the runtime's own directory in each hierarchy when
// nothing is left in it.
func (r *cgroupRoot) removeIfEmpty() {
	for _, d := range r.dirs {
		_ = os.Remove(d)
	}
}

// cgroupStats reads usage from a container's cgroups.
type cgroupStats struct {
	CPUNanos         uint64
	MemoryUsage      uint64
	MemoryWorkingSet uint64
	OOMKills         uint64
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// keyedFile reads "key value" lines.
func keyedFile(path string) map[string]uint64 {
	out := map[string]uint64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// readCgroupStats reads CPU, memory and OOM-kill counters; v2 reports
// whether paths are cgroup v2 paths.
func readCgroupStats(paths map[string]string) (cgroupStats, error) {
	var s cgroupStats
	if p, ok := paths[""]; ok {
		cpu := keyedFile(filepath.Join(p, "cpu.stat"))
		s.CPUNanos = cpu["usage_usec"] * 1000
		cur, err := readUint(filepath.Join(p, "memory.current"))
		if err != nil {
			return s, err
		}
		s.MemoryUsage = cur
		ms := keyedFile(filepath.Join(p, "memory.stat"))
		s.MemoryWorkingSet = cur - min(cur, ms["inactive_file"])
		s.OOMKills = keyedFile(filepath.Join(p, "memory.events"))["oom_kill"]
		return s, nil
	}
	if p, ok := paths["cpuacct"]; ok {
		s.CPUNanos, _ = readUint(filepath.Join(p, "cpuacct.usage"))
	}
	p := paths["memory"]
	cur, err := readUint(filepath.Join(p, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	s.MemoryUsage = cur
	ms := keyedFile(filepath.Join(p, "memory.stat"))
	s.MemoryWorkingSet = cur - min(cur, ms["total_inactive_file"])
	oc := keyedFile(filepath.Join(p, "memory.oom_control"))
	if n, ok := oc["oom_kill"]; ok {
		s.OOMKills = n
	} else if oc["under_oom"] > 0 {
		s.OOMKills = 1
	}
	return s, nil
}
