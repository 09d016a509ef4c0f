package brokenruntime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec"
)

// Names of the broken runtime plugins.
const (
	// NoExitCodes: ContainerStatus (and the container statuses of
	// PodSandboxStatus) always report exit code 0, as a runtime that never
	// collects its containers' wait status would. Caught by
	// runtime:exit-code (also fails runtime:resources, whose OOM-killed
	// container must report 137).
	NoExitCodes = "broken-no-exit-codes"
	// IgnoresStopTimeout: StopContainer ignores the grace period and kills
	// at once (timeout 0), so no SIGTERM handler gets to run. Caught by
	// runtime:stop-grace only.
	IgnoresStopTimeout = "broken-ignores-stop-timeout"
	// LeaksNetNS: RemovePodSandbox leaves the sandbox's network namespace
	// mounted (a second bind mount of it is never unmounted), so the
	// namespace outlives the sandbox. Caught by runtime:network-namespace
	// only. The leaked mounts are undone when the runtime's closer runs.
	LeaksNetNS = "broken-leaks-netns"
	// WrongLogFormat: container logs are written in Docker's json-file
	// format ({"log":...,"stream":...,"time":...}) instead of CRI's
	// "<RFC3339Nano> <stream> <F|P> <line>". Caught by runtime:logs only.
	WrongLogFormat = "broken-wrong-log-format"
	// CutsEnvAtEquals: an environment value is cut at its first '=', as a
	// runtime that splits "KEY=VALUE" on every '=' would. Caught by
	// runtime:env-args-workdir only.
	CutsEnvAtEquals = "broken-cuts-env-at-equals"
	// OOMExitCodeZero: a container the OOM killer ended is reported
	// OOMKilled with exit code 0 (the status taken from the cgroup's OOM
	// event, which carries none, instead of the wait status). Caught by
	// runtime:resources only.
	OOMExitCodeZero = "broken-oom-exit-code-zero"
	// FixedStopGrace: StopContainer ignores its timeout and always grants
	// FixedGrace. Caught by runtime:stop-grace only.
	FixedStopGrace = "broken-fixed-stop-grace"
	// StopWaitsWholeTimeout: StopContainer returns only once the timeout
	// has run out, even when the container exited on SIGTERM at once (it
	// waits on the timer, not on the exit). Caught by runtime:stop-grace
	// only.
	StopWaitsWholeTimeout = "broken-stop-waits-whole-timeout"
	// ListDropsAnnotations: ListContainers returns containers without their
	// annotations (ContainerStatus still has them), as a runtime whose list
	// path reads a summary record would. Caught by
	// runtime:container-lifecycle only.
	ListDropsAnnotations = "broken-list-drops-annotations"
	// ExitCodeInt8: exit codes are kept in a signed byte, so 128 and above
	// come back negative (255 as -1, 137 as -119). Caught by
	// runtime:exit-code (also fails runtime:resources, whose OOM-killed
	// container must report 137).
	ExitCodeInt8 = "broken-exit-code-int8"
)

// FixedGrace is the grace period a FixedStopGrace runtime always grants.
const FixedGrace = 10 * time.Second

// Broken is a broken runtime plugin and the capabilities of the runtime
// suite whose specs catch it.
type Broken struct {
	// Plugin is the broken runtime, named with the "broken-" prefix.
	Plugin spec.RuntimePlugin
	// CaughtBy is the capability whose specs target the bug: at least one
	// of them must fail.
	CaughtBy spec.Capability
	// AlsoFails are other capabilities whose specs may fail too. Specs of
	// any other capability must pass.
	AlsoFails []spec.Capability
}

// Catalog returns every broken runtime built over base (a correct runtime
// plugin, normally kubelab's process runtime; LeaksNetNS needs its verbose
// PodSandboxStatus to name the namespace file as Info["netns"]), with the
// capabilities that catch it.
func Catalog(base spec.RuntimePlugin) []Broken {
	wrap := func(name, desc string, w func(rt spec.Runtime, cfg spec.RuntimeConfig) (spec.Runtime, func() error)) spec.RuntimePlugin {
		return spec.RuntimePlugin{
			Name:         name,
			Description:  desc,
			Capabilities: slices.Clone(base.Capabilities),
			ImportImages: base.ImportImages,
			New: func(ctx context.Context, cfg spec.RuntimeConfig) (spec.Runtime, func() error, error) {
				rt, closer, err := base.New(ctx, cfg)
				if err != nil {
					return nil, nil, err
				}
				b, stop := w(rt, cfg)
				return b, func() error {
					var err error
					if stop != nil {
						err = stop()
					}
					if closer != nil {
						err = errors.Join(err, closer())
					}
					return err
				}, nil
			},
		}
	}
	return []Broken{
		{
			Plugin: wrap(NoExitCodes, "BROKEN: containers always report exit code 0",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) { return &noExitCodes{rt}, nil }),
			CaughtBy: "runtime:exit-code",
			// An OOM-killed container's 137 is lost too.
			AlsoFails: []spec.Capability{"runtime:resources"},
		},
		{
			Plugin: wrap(IgnoresStopTimeout, "BROKEN: StopContainer kills at once, ignoring the grace period",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &ignoresStopTimeout{rt}, nil
				}),
			CaughtBy: "runtime:stop-grace",
		},
		{
			Plugin: wrap(LeaksNetNS, "BROKEN: removed sandboxes leave their network namespace mounted",
				func(rt spec.Runtime, cfg spec.RuntimeConfig) (spec.Runtime, func() error) {
					l := &leaksNetNS{Runtime: rt, dir: filepath.Join(cfg.RootDir, "leaked-netns")}
					return l, l.release
				}),
			CaughtBy: "runtime:network-namespace",
		},
		{
			Plugin: wrap(WrongLogFormat, "BROKEN: container logs are in Docker's json-file format, not CRI's",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					w := newWrongLogFormat(rt)
					return w, w.close
				}),
			CaughtBy: "runtime:logs",
		},
		{
			Plugin: wrap(CutsEnvAtEquals, "BROKEN: environment values are cut at their first '='",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &cutsEnvAtEquals{rt}, nil
				}),
			CaughtBy: "runtime:env-args-workdir",
		},
		{
			Plugin: wrap(OOMExitCodeZero, "BROKEN: OOM-killed containers report exit code 0",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &oomExitCodeZero{rt}, nil
				}),
			CaughtBy: "runtime:resources",
		},
		{
			Plugin: wrap(FixedStopGrace, "BROKEN: StopContainer always grants 10s, whatever the timeout",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &fixedStopGrace{rt}, nil
				}),
			CaughtBy: "runtime:stop-grace",
		},
		{
			Plugin: wrap(StopWaitsWholeTimeout, "BROKEN: StopContainer returns only when the timeout ran out",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &stopWaitsWholeTimeout{rt}, nil
				}),
			CaughtBy: "runtime:stop-grace",
		},
		{
			Plugin: wrap(ListDropsAnnotations, "BROKEN: ListContainers returns no annotations",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &listDropsAnnotations{rt}, nil
				}),
			CaughtBy: "runtime:container-lifecycle",
		},
		{
			Plugin: wrap(ExitCodeInt8, "BROKEN: exit codes of 128 and above come back negative",
				func(rt spec.Runtime, _ spec.RuntimeConfig) (spec.Runtime, func() error) {
					return &exitCodeInt8{rt}, nil
				}),
			CaughtBy:  "runtime:exit-code",
			AlsoFails: []spec.Capability{"runtime:resources"},
		},
	}
}

// Plugins returns the broken runtime plugins of Catalog(base), for a
// registry.
func Plugins(base spec.RuntimePlugin) []spec.RuntimePlugin {
	var out []spec.RuntimePlugin
	for _, b := range Catalog(base) {
		out = append(out, b.Plugin)
	}
	return out
}

// --- broken-no-exit-codes ---

type noExitCodes struct{ spec.Runtime }

// ContainerStatus reports exit code 0 whatever the container exited with.
func (r *noExitCodes) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	resp, err := r.Runtime.ContainerStatus(ctx, id, verbose)
	if resp != nil && resp.Status != nil {
		resp = proto.Clone(resp).(*runtimeapi.ContainerStatusResponse)
		resp.Status.ExitCode = 0 // BUG: the wait status is never collected
	}
	return resp, err
}

// PodSandboxStatus reports exit code 0 for every container of the sandbox.
func (r *noExitCodes) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	resp, err := r.Runtime.PodSandboxStatus(ctx, id, verbose)
	if resp != nil {
		resp = proto.Clone(resp).(*runtimeapi.PodSandboxStatusResponse)
		for _, c := range resp.ContainersStatuses {
			c.ExitCode = 0 // BUG: as above
		}
	}
	return resp, err
}

// --- broken-ignores-stop-timeout ---

type ignoresStopTimeout struct{ spec.Runtime }

// StopContainer kills the container at once, whatever the timeout.
func (r *ignoresStopTimeout) StopContainer(ctx context.Context, id string, timeout int64) error {
	return r.Runtime.StopContainer(ctx, id, 0) // BUG: the grace period is ignored
}

// --- broken-leaks-netns ---

type leaksNetNS struct {
	spec.Runtime
	dir string

	mu     sync.Mutex
	leaked []string // mount points of the leaked namespaces
}

// RemovePodSandbox removes the sandbox but leaves its network namespace
// mounted.
func (r *leaksNetNS) RemovePodSandbox(ctx context.Context, id string) error {
	if resp, err := r.Runtime.PodSandboxStatus(ctx, id, true); err == nil {
		if ns := resp.GetInfo()["netns"]; ns != "" {
			r.leak(ns, resp.GetStatus().GetId())
		}
	}
	return r.Runtime.RemovePodSandbox(ctx, id)
}

// leak bind-mounts the namespace file ns under r.dir, where nothing will
// ever unmount it but release.
func (r *leaksNetNS) leak(ns, id string) {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return
	}
	dst := filepath.Join(r.dir, id)
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return
	}
	f.Close()
	if err := unix.Mount(ns, dst, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(dst)
		return
	}
	r.mu.Lock()
	r.leaked = append(r.leaked, dst) // BUG: the sandbox's namespace stays mounted here
	r.mu.Unlock()
}

// release unmounts what leak mounted, so that the broken runtime leaves
// the test machine clean when it is closed.
func (r *leaksNetNS) release() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, p := range r.leaked {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	r.leaked = nil
	return errors.Join(append(errs, os.RemoveAll(r.dir))...)
}

// --- broken-wrong-log-format ---

// hiddenSuffix names the file the base runtime really logs to; the path
// the caller asked for gets a json-file copy.
const hiddenSuffix = ".cri-hidden"

// copyInterval is how often the json-file copies catch up.
const copyInterval = 20 * time.Millisecond

type logCopy struct {
	sandboxID, src, dst string
	offset              int64
}

type wrongLogFormat struct {
	spec.Runtime

	mu     sync.Mutex
	copies map[string]*logCopy // by container ID

	stop chan struct{}
	done chan struct{}
}

func newWrongLogFormat(rt spec.Runtime) *wrongLogFormat {
	w := &wrongLogFormat{Runtime: rt, copies: map[string]*logCopy{}, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// CreateContainer makes the base runtime log to a hidden file, copied to
// the requested log path in the wrong format.
func (w *wrongLogFormat) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	if cfg.GetLogPath() == "" || sbCfg.GetLogDirectory() == "" {
		return w.Runtime.CreateContainer(ctx, sandboxID, cfg, sbCfg)
	}
	hidden := proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	hidden.LogPath += hiddenSuffix
	id, err := w.Runtime.CreateContainer(ctx, sandboxID, hidden, sbCfg)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(sbCfg.GetLogDirectory(), cfg.GetLogPath())
	w.mu.Lock()
	w.copies[id] = &logCopy{sandboxID: sandboxID, src: dst + hiddenSuffix, dst: dst}
	w.mu.Unlock()
	return id, nil
}

// RemovePodSandbox stops copying the logs of the sandbox's containers
// (no copy is written once it returns), then removes the sandbox.
func (w *wrongLogFormat) RemovePodSandbox(ctx context.Context, id string) error {
	if resp, err := w.Runtime.PodSandboxStatus(ctx, id, false); err == nil {
		id = resp.GetStatus().GetId() // a full ID, if id was a prefix
	}
	w.mu.Lock()
	for cid, c := range w.copies {
		if c.sandboxID == id {
			delete(w.copies, cid)
		}
	}
	w.mu.Unlock()
	return w.Runtime.RemovePodSandbox(ctx, id)
}

// RemoveContainer removes the container and stops copying its log.
func (w *wrongLogFormat) RemoveContainer(ctx context.Context, id string) error {
	w.mu.Lock()
	delete(w.copies, id)
	w.mu.Unlock()
	return w.Runtime.RemoveContainer(ctx, id)
}

func (w *wrongLogFormat) loop() {
	defer close(w.done)
	t := time.NewTicker(copyInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		for _, c := range w.copies {
			c.catchUp()
		}
		w.mu.Unlock()
	}
}

// catchUp appends the CRI lines written since the last call to dst,
// re-encoded in Docker's json-file format.
func (c *logCopy) catchUp() {
	src, err := os.Open(c.src)
	if err != nil {
		return
	}
	defer src.Close()
	if _, err := src.Seek(c.offset, io.SeekStart); err != nil {
		return
	}
	dst, err := os.OpenFile(c.dst, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	defer dst.Close()
	rd := bufio.NewReader(src)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return // an incomplete line is read again next time
		}
		c.offset += int64(len(line))
		parts := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 4)
		if len(parts) != 4 {
			continue
		}
		text := parts[3]
		if parts[2] == "F" {
			text += "\n"
		}
		b, _ := json.Marshal(map[string]string{"log": text, "stream": parts[1], "time": parts[0]})
		_, _ = dst.Write(append(b, '\n')) // BUG: not the CRI format
	}
}

func (w *wrongLogFormat) close() error {
	close(w.stop)
	<-w.done
	return nil
}

// --- broken-cuts-env-at-equals ---

type cutsEnvAtEquals struct{ spec.Runtime }

// CreateContainer creates the container with every environment value cut
// at its first '='.
func (r *cutsEnvAtEquals) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	cfg = proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	for _, kv := range cfg.Envs {
		kv.Value, _, _ = bytes.Cut(kv.Value, []byte("=")) // BUG: "K=a=b" parsed as K, a, b
	}
	return r.Runtime.CreateContainer(ctx, sandboxID, cfg, sbCfg)
}

// --- broken-oom-exit-code-zero ---

type oomExitCodeZero struct{ spec.Runtime }

func zeroOOMExit(c *runtimeapi.ContainerStatus) {
	if c != nil && c.Reason == "OOMKilled" {
		c.ExitCode = 0 // BUG: the OOM event carries no exit status
	}
}

// ContainerStatus reports exit code 0 for an OOM-killed container.
func (r *oomExitCodeZero) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	resp, err := r.Runtime.ContainerStatus(ctx, id, verbose)
	if resp != nil && resp.Status != nil {
		resp = proto.Clone(resp).(*runtimeapi.ContainerStatusResponse)
		zeroOOMExit(resp.Status)
	}
	return resp, err
}

// PodSandboxStatus reports exit code 0 for the sandbox's OOM-killed
// containers.
func (r *oomExitCodeZero) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	resp, err := r.Runtime.PodSandboxStatus(ctx, id, verbose)
	if resp != nil {
		resp = proto.Clone(resp).(*runtimeapi.PodSandboxStatusResponse)
		for _, c := range resp.ContainersStatuses {
			zeroOOMExit(c)
		}
	}
	return resp, err
}

// --- broken-fixed-stop-grace ---

type fixedStopGrace struct{ spec.Runtime }

// StopContainer grants FixedGrace whatever the timeout.
func (r *fixedStopGrace) StopContainer(ctx context.Context, id string, timeout int64) error {
	return r.Runtime.StopContainer(ctx, id, int64(FixedGrace/time.Second)) // BUG: the timeout is ignored
}

// --- broken-stop-waits-whole-timeout ---

type stopWaitsWholeTimeout struct{ spec.Runtime }

// StopContainer stops the container, then waits out the rest of the
// timeout.
func (r *stopWaitsWholeTimeout) StopContainer(ctx context.Context, id string, timeout int64) error {
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	err := r.Runtime.StopContainer(ctx, id, timeout)
	select { // BUG: waits on the timer, not on the container's exit
	case <-time.After(time.Until(deadline)):
	case <-ctx.Done():
	}
	return err
}

// --- broken-list-drops-annotations ---

type listDropsAnnotations struct{ spec.Runtime }

// ListContainers lists the containers without their annotations.
func (r *listDropsAnnotations) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	cs, err := r.Runtime.ListContainers(ctx, filter)
	out := make([]*runtimeapi.Container, 0, len(cs))
	for _, c := range cs {
		c = proto.Clone(c).(*runtimeapi.Container)
		c.Annotations = nil // BUG: the summary record has no annotations
		out = append(out, c)
	}
	return out, err
}

// --- broken-exit-code-int8 ---

type exitCodeInt8 struct{ spec.Runtime }

func int8Exit(c *runtimeapi.ContainerStatus) {
	if c != nil {
		c.ExitCode = int32(int8(c.ExitCode)) // BUG: the exit status is kept in a signed byte
	}
}

// ContainerStatus reports the exit code through a signed byte.
func (r *exitCodeInt8) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	resp, err := r.Runtime.ContainerStatus(ctx, id, verbose)
	if resp != nil && resp.Status != nil {
		resp = proto.Clone(resp).(*runtimeapi.ContainerStatusResponse)
		int8Exit(resp.Status)
	}
	return resp, err
}

// PodSandboxStatus reports the exit codes of the sandbox's containers
// through a signed byte.
func (r *exitCodeInt8) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	resp, err := r.Runtime.PodSandboxStatus(ctx, id, verbose)
	if resp != nil {
		resp = proto.Clone(resp).(*runtimeapi.PodSandboxStatusResponse)
		for _, c := range resp.ContainersStatuses {
			int8Exit(c)
		}
	}
	return resp, err
}
