// Package runtimebench measures a CRI runtime the way the kubelet loads it:
// N pods, each a sandbox plus one container, started one after another and
// left running, then stopped and removed one after another. It reports the
// start latency (RunPodSandbox + CreateContainer + StartContainer), the stop
// latency (StopPodSandbox + RemovePodSandbox, which stops and removes the
// container too), their p50 and p99, and the memory a running pod costs.
//
// Memory per pod is the proportional set size (PSS, from
// /proc/PID/smaps_rollup) of the processes that keep the pods running —
// the runtime's per-pod helpers (containerd's shims, the process runtime's
// shims) and everything below them (pause processes, containers) — summed
// while all N pods run, divided by N. It leaves out the runtime daemon
// itself, whose growth is reported separately as DaemonRSSGrowth.
//
// `kubelab bench runtime` runs it against kubelab's process runtime and a
// real containerd side by side.
package runtimebench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/procstat"
)

// Config is one run's workload.
type Config struct {
	// Pods is the number of pods; 0 means 100.
	Pods int
	// Image is the container's image, run with its default command; it
	// must be present in the runtime. Empty means kubelab.local/workload:1.0
	// (whose default command sleeps until SIGTERM).
	Image string
	// LogDir is where the containers' logs go; empty means a temporary
	// directory, removed afterwards.
	LogDir string
	// Helpers returns the pids of the runtime's per-pod helper processes
	// (shims) at the moment it is called; memory is counted for them and
	// their descendants. Nil means no memory figure.
	Helpers func() []int
	// DaemonPid is the runtime daemon's pid, for DaemonRSSGrowth; 0 means
	// not measured.
	DaemonPid int
}

// Result is one run's figures.
type Result struct {
	// Runtime names the runtime measured.
	Runtime string `json:"runtime"`
	// Pods is the number of pods run.
	Pods int `json:"pods"`
	// Start and Stop are the latency percentiles.
	Start Latency `json:"start"`
	Stop  Latency `json:"stop"`
	// PodPSSBytes is the memory a running pod costs (see the package doc);
	// 0 when not measured.
	PodPSSBytes uint64 `json:"podPSSBytes"`
	// PodProcesses is the number of processes per running pod (helpers
	// and their descendants, divided by Pods).
	PodProcesses float64 `json:"podProcesses"`
	// DaemonRSSGrowth is how much the daemon's resident set grew from
	// before the first pod to when all pods ran; 0 when not measured.
	DaemonRSSGrowth int64 `json:"daemonRSSGrowthBytes"`
}

// Latency summarizes durations.
type Latency struct {
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	Max  time.Duration `json:"max"`
	Mean time.Duration `json:"mean"`
}

// Summarize returns the percentiles of ds (nearest rank); ds is sorted in
// place.
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return Latency{P50: rank(0.50), P99: rank(0.99), Max: ds[len(ds)-1], Mean: sum / time.Duration(len(ds))}
}

// Run runs the workload against rt, named name in the result. Every pod it
// started is removed before it returns, even on error.
func Run(ctx context.Context, name string, rt spec.Runtime, cfg Config) (_ *Result, err error) {
	if cfg.Pods == 0 {
		cfg.Pods = 100
	}
	if cfg.Pods < 0 {
		return nil, fmt.Errorf("runtime bench: %d pods: %w", cfg.Pods, spec.ErrInvalid)
	}
	if cfg.Image == "" {
		cfg.Image = "kubelab.local/workload:1.0"
	}
	if cfg.LogDir == "" {
		dir, err := os.MkdirTemp("", "kubelab-runtimebench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.LogDir = dir
	}
	if img, err := rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: cfg.Image}, false); err != nil || img.GetImage() == nil {
		return nil, fmt.Errorf("runtime bench: %s: image %s is not in the runtime (%v)", name, cfg.Image, err)
	}
	res := &Result{Runtime: name, Pods: cfg.Pods}
	var daemonBefore uint64
	if cfg.DaemonPid > 0 {
		daemonBefore, _ = rss(cfg.DaemonPid)
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	var sandboxes []string
	defer func() {
		// Whatever is still running when the run fails.
		for _, sb := range sandboxes {
			rt.StopPodSandbox(context.WithoutCancel(ctx), sb)
			rt.RemovePodSandbox(context.WithoutCancel(ctx), sb)
		}
	}()
	starts := make([]time.Duration, 0, cfg.Pods)
	for i := range cfg.Pods {
		sbCfg := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", Uid: fmt.Sprintf("bench-%s-%d", nonce, i)},
			Hostname:     fmt.Sprintf("bench-%d", i),
			LogDirectory: filepath.Join(cfg.LogDir, strconv.Itoa(i)),
			Linux:        &runtimeapi.LinuxPodSandboxConfig{},
		}
		t0 := time.Now()
		sb, err := rt.RunPodSandbox(ctx, sbCfg, "")
		if err != nil {
			return nil, fmt.Errorf("runtime bench: %s: pod %d: RunPodSandbox: %w", name, i, err)
		}
		sandboxes = append(sandboxes, sb)
		id, err := rt.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
			Image:    &runtimeapi.ImageSpec{Image: cfg.Image},
			LogPath:  "main.log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		}, sbCfg)
		if err != nil {
			return nil, fmt.Errorf("runtime bench: %s: pod %d: CreateContainer: %w", name, i, err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			return nil, fmt.Errorf("runtime bench: %s: pod %d: StartContainer: %w", name, i, err)
		}
		starts = append(starts, time.Since(t0))
	}
	if cfg.Helpers != nil {
		pss, n, err := treePSS(cfg.Helpers())
		if err != nil {
			return nil, fmt.Errorf("runtime bench: %s: memory: %w", name, err)
		}
		res.PodPSSBytes = pss / uint64(cfg.Pods)
		res.PodProcesses = float64(n) / float64(cfg.Pods)
	}
	if cfg.DaemonPid > 0 {
		if after, err := rss(cfg.DaemonPid); err == nil {
			res.DaemonRSSGrowth = int64(after) - int64(daemonBefore)
		}
	}
	stops := make([]time.Duration, 0, cfg.Pods)
	for len(sandboxes) > 0 {
		sb := sandboxes[0]
		t0 := time.Now()
		if err := rt.StopPodSandbox(ctx, sb); err != nil {
			return nil, fmt.Errorf("runtime bench: %s: StopPodSandbox: %w", name, err)
		}
		if err := rt.RemovePodSandbox(ctx, sb); err != nil {
			return nil, fmt.Errorf("runtime bench: %s: RemovePodSandbox: %w", name, err)
		}
		stops = append(stops, time.Since(t0))
		sandboxes = sandboxes[1:]
	}
	res.Start, res.Stop = Summarize(starts), Summarize(stops)
	return res, nil
}

// treePSS sums the PSS of the processes roots and all their descendants,
// and counts them.
func treePSS(roots []int) (uint64, int, error) {
	children := map[int][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentPid(pid); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	seen := map[int]bool{}
	var total uint64
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		if p, err := pss(pid); err == nil {
			total += p
		}
		queue = append(queue, children[pid]...)
	}
	return total, len(seen), nil
}

// parentPid reads a process's parent from /proc/PID/stat.
func parentPid(pid int) (int, error) {
	s, err := procstat.Read(pid)
	return s.PPID, err
}

// pss returns a process's proportional set size in bytes.
func pss(pid int) (uint64, error) {
	return procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
}

// rss returns a process's resident set size in bytes.
func rss(pid int) (uint64, error) {
	return procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
}

// procKB reads the "KEY: N kB" line of a /proc file, in bytes.
func procKB(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			n, err := strconv.ParseUint(fields[0], 10, 64)
			return n << 10, err
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// Pids returns the pids of the processes whose command line (argv) match
// accepts, for Config.Helpers.
func Pids(match func(argv []string) bool) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
