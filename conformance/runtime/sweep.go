package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/procstat"
)

// RootPattern is the name pattern (in os.TempDir()) of the root directories
// PluginTarget gives the runtimes it starts.
const RootPattern = "kubelab-runtime-conformance-*"

// ownerFile, in a root directory, says which process uses the root and how
// the runtime there was started, so that a later run can clean up after a
// run that crashed.
const ownerFile = "owner.json"

// owner is the content of ownerFile.
type owner struct {
	// Pid and Start (the process's start time in clock ticks, field 22 of
	// /proc/PID/stat) identify the process that owns the root, even when
	// the PID is reused.
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Plugin and Options are what the runtime was started with; RootDir is
	// the runtime's root directory (within the claimed directory).
	Plugin  string            `json:"plugin"`
	Options map[string]string `json:"options,omitempty"`
	RootDir string            `json:"rootDir"`
}

// processStart returns the start time of process pid, or 0 if there is no
// such process.
func processStart(pid int) uint64 { return procstat.StartTime(pid) }

// ClaimRoot records in dir that this process runs plugin with options over
// the root directory rootDir, for SweepStale.
func ClaimRoot(dir, plugin, rootDir string, options map[string]string) error {
	b, err := json.Marshal(owner{Pid: os.Getpid(), Start: processStart(os.Getpid()), Plugin: plugin, Options: options, RootDir: rootDir})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), b, 0o644)
}

// SweepStale cleans up after runs of the suite that crashed: for every
// directory of os.TempDir() matching pattern whose owner process (see
// ClaimRoot) is gone and whose runtime was plugin p, it starts p again over
// the same root with the same options — the runtime finds its sandboxes
// there — removes the suite's sandboxes (and with them their containers,
// network namespaces, links and cgroups), and removes the directory.
// Directories of other plugins, of live runs or without an owner file are
// left alone.
func SweepStale(ctx context.Context, p spec.RuntimePlugin, pattern string) error {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), pattern))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		var o owner
		if json.Unmarshal(b, &o) != nil || o.Plugin != p.Name || o.RootDir == "" {
			continue
		}
		if start := processStart(o.Pid); start != 0 && start == o.Start {
			continue // its run is alive
		}
		if err := sweepRoot(ctx, p, o); err != nil {
			errs = append(errs, fmt.Errorf("cleaning up after a crashed run in %s: %w", dir, err))
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sweepRoot(ctx context.Context, p spec.RuntimePlugin, o owner) error {
	rt, closer, err := p.New(ctx, spec.RuntimeConfig{RootDir: o.RootDir, Options: o.Options})
	if err != nil {
		return err
	}
	err = RemoveAll(ctx, rt)
	if closer != nil {
		err = errors.Join(err, closer())
	}
	return errors.Join(err, rt.Close(ctx))
}
