// Package process is kubelab's own container runtime: a spec.Runtime (the
// CRI RuntimeService and ImageManagerService) that runs containers as plain
// Linux processes, with no daemon besides itself and no registry. It needs
// root and Linux; cgroup v1 (this project's CI) and v2 are detected at run
// time.
//
// # Sandboxes
//
// A pod sandbox is a network namespace pinned by a bind mount at
// ROOT/netns/ID (so it outlives every process and the runtime itself), with
// its loopback up, its net.* sysctls, and an address from a Network: by
// default BridgeNetwork, a bridge named after the runtime instance holding
// the pod CIDR's gateway address plus a veth pair per sandbox (eth0 inside,
// a default route through the gateway), with address allocations kept as
// files so that they survive restarts. The bridge goes with the last
// sandbox. A sandbox also has a cgroup directory, parent of its containers'
// (the CRI CgroupParent is not used), and hosts/hostname/resolv.conf files
// bind-mounted into its containers. A sandbox with PID mode POD (CRI's
// zero value; the kubelet's shareProcessNamespace) has a PID-namespace
// holder, the runtime binary re-executed as PID 1 of a new PID namespace
// (like containerd's pause process): it reaps orphans and lives until the
// sandbox stops, which ends every process left in that namespace. A sandbox
// with the NODE network mode has no namespace, address or wiring of its
// own: its containers use the host's network and UTS namespaces; NODE PID
// and IPC modes keep those of the host too.
// Port mappings with a host port are published with nftables (hostports.go):
// DNAT from the host's port (TCP, UDP or SCTP, on HostIp or on every local
// address) to the pod's IP and container port, in a table of the runtime
// instance's own (kubelab-hostports-HASH) whose prerouting chain serves
// connections from outside and whose output chain serves those made on the
// host, 127.0.0.1 included (masqueraded to the pod link's address, with
// route_localnet set on that link). Traffic from other hosts is forwarded
// only if the host forwards IPv4. A host port held by another sandbox is
// AlreadyExists. The rules go when the sandbox stops, the table with the
// last sandbox that had host ports.
// StopPodSandbox kills the containers and releases the network;
// RemovePodSandbox removes everything.
//
// # Containers
//
// A container is a process in its sandbox's network namespace with its own
// mount, UTS and IPC namespaces and the PID namespace of its PID mode:
// CONTAINER, its own; POD, the sandbox's (the shim forks the init from a
// thread that joined it, so the workload is not PID 1 there; a POD
// container in a CONTAINER-mode sandbox gets its own); TARGET, that of
// another running container of the sandbox; NODE, the host's. Its root is
// an overlay of a writable directory (ROOT/containers/ID/upper) over the
// image's unpacked root filesystem. The runtime binary re-executes itself
// (see RunInitIfRequested): first as the container's shim, in a session of
// its own, which starts the init and outlives the runtime process; the
// init (PID 1 of a new PID namespace in mode CONTAINER) mounts the overlay, /proc (host-wide
// parts read-only or masked), a minimal /dev, a read-only /sys and the
// configured bind mounts, sets the hostname, pivots into the root, drops
// the capabilities the container does not keep (containerd's default set
// unless privileged), joins the container's cgroups (CPU shares and quota,
// memory limit), becomes the configured user and execs the workload, which
// so takes its PID. The shim copies stdout and stderr to the CRI log
// file ("<RFC3339Nano> stdout|stderr F|P <line>"), waits for the init and
// writes ROOT/containers/ID/exit.json: exit code (128+signal when killed),
// finish time and whether the memory cgroup recorded an OOM kill
// (reason OOMKilled). A workload that cannot be exec'ed is reported EXITED
// with reason StartError and the cause as its message.
//
// StopContainer signals the init through a pidfd (a recycled PID is never
// signalled) with the image's stop signal (SIGTERM), then SIGKILL after the
// timeout, to the init and every other process in the container's
// cgroups (with a shared PID namespace the container's descendants do not
// end with it; the shim also kills them once the main process exited). Note
// that PID 1 ignores signals it has no handler for, so a workload without
// a SIGTERM handler in a PID namespace of its own is killed only at the
// timeout, as with containerd. ExecSync forks the command from a thread that joined all the
// container's namespaces, its mount namespace included, with the
// container's capability bounding set and user (see nsenter.Enter), then
// moves it into the container's cgroups.
//
// # Streaming
//
// Exec and PortForward return URLs to the runtime's streaming server, the
// kubelet's own (k8s.io/cri-streaming), started on first use on
// Config.StreamAddr (by default the loopback, on a free port) and stopped by
// Close. A streaming exec runs like ExecSync's commands, its stdin, stdout
// and stderr connected to the client, or with a new terminal (resized as
// the client asks) when TTY is set; a port forward connects to the port on
// the sandbox's loopback from inside its network namespace. Attach also
// returns such a URL: the container's shim holds its stdin (when
// ContainerConfig.Stdin; closed after the first attach with StdinOnce) and
// sends its stdout and stderr, as they come, to attached clients as well as
// to the log file, over a unix socket in the container's directory
// (attach.go).
//
// # Restarts
//
// State lives in JSON files under the root directory (sandboxes/ID,
// containers/ID); New reads them back. Since each container's shim is a
// separate process that is not the runtime's child after a restart, a
// restarted runtime finds running containers (identified by PID and start
// time, so PID reuse is detected), learns of exits that happened while it
// was down from exit.json, and stops them by signalling the init; a
// container whose shim died without an exit record is reported EXITED with
// reason Unknown. Removal follows CRI: removing a running container kills
// it first, and removing an unknown sandbox or container succeeds.
//
// # Limitations
//
// No NoNewPrivs, no explicit masked/read-only paths, no
// mount propagation modes, no IPv6 host ports.
// No user namespaces, seccomp, AppArmor/SELinux or device cgroup rules:
// a container's root is the host's root with fewer capabilities. No image
// pulls (images are imported into the image store), no terminal for a
// container (ContainerConfig.Tty is ignored, so no tty Attach), no
// container events, no checkpointing, no metrics descriptors; these
// answer Unimplemented (a tty Attach, InvalidArgument).
package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/nsenter"
)

// Name is the plugin's registry name.
const Name = "process"

// Version is the runtime version reported by Version.
const Version = "0.1.0"

// RuntimeName is the runtime name reported by Version.
const RuntimeName = "kubelab-process"

// ImageStore is what the runtime needs from an image store; a
// *imagestore.Store has it. Errors about unknown images wrap
// spec.ErrNotFound.
type ImageStore interface {
	// List returns every image.
	List() ([]imagestore.Image, error)
	// Get resolves a reference (name, digest or ID).
	Get(ref string) (imagestore.Image, error)
	// Remove removes an image.
	Remove(ref string) error
	// Unpacked returns the image's unpacked root filesystem, a directory
	// the runtime must not write to.
	Unpacked(ctx context.Context, ref string) (string, error)
}

// Config is what New needs.
type Config struct {
	// RootDir holds the runtime's state; it is created if missing.
	RootDir string
	// Images is the image store containers are created from.
	Images ImageStore
	// Network wires sandboxes; nil means NoNetwork.
	Network Network
	// Instance names this runtime in host-wide resources (cgroup directory,
	// default bridge name). Empty means a hash of RootDir, so a restarted
	// runtime with the same RootDir is the same instance.
	Instance string
	// StreamAddr is the host:port of the streaming server that serves
	// Exec and PortForward; empty means DefaultStreamAddr.
	StreamAddr string
}

// Runtime is the process runtime. It is safe for concurrent use.
type Runtime struct {
	root     string
	instance string
	images   ImageStore
	network  Network
	cgroups  *cgroupRoot
	// streamAddr and stream are the streaming server's (see stream.go).
	streamAddr string
	stream     streamServer
	// hostPorts publishes sandboxes' host ports (see hostports.go).
	hostPorts *hostPorts

	mu sync.Mutex // guards sandboxes, containers, names and every state file they own
	// sandboxes and containers are by ID.
	sandboxes  map[string]*sandbox
	containers map[string]*container
	// names holds the reserved sandbox and container names (see nameKey).
	names map[string]string
}

var _ spec.Runtime = (*Runtime)(nil)

// sandboxState is a sandbox as persisted in sandboxes/ID/sandbox.json.
type sandboxState struct {
	ID        string            `json:"id"`
	Config    json.RawMessage   `json:"config"`
	CreatedAt int64             `json:"createdAt"`
	Ready     bool              `json:"ready"`
	NetNS     string            `json:"netns"`
	IP        string            `json:"ip,omitempty"`
	Cgroups   map[string]string `json:"cgroups"`
	// NetworkUp is true between a successful Network.Setup and Teardown.
	NetworkUp bool `json:"networkUp,omitempty"`
	// HostNetwork, HostPID and HostIPC are the NODE namespace modes of the
	// sandbox's config: its containers share those of the runtime's host.
	// A host-network sandbox has no NetNS, address or Network wiring.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	HostPID     bool `json:"hostPID,omitempty"`
	HostIPC     bool `json:"hostIPC,omitempty"`
	// PidHolder and PidHolderStart identify the process that holds the
	// pod-wide PID namespace (PID mode POD) as its PID 1; zero when the
	// sandbox has none (modes CONTAINER and NODE) or once it was stopped.
	// SharedPID records that the sandbox was created with PID mode POD.
	SharedPID      bool   `json:"sharedPID,omitempty"`
	PidHolder      int    `json:"pidHolder,omitempty"`
	PidHolderStart uint64 `json:"pidHolderStart,omitempty"`
}

// sandbox is a sandbox in memory; its fields are guarded by Runtime.mu.
type sandbox struct {
	sandboxState
	config *runtimeapi.PodSandboxConfig
}

// containerState is a container as persisted in containers/ID/container.json.
type containerState struct {
	ID         string            `json:"id"`
	SandboxID  string            `json:"sandboxId"`
	Config     json.RawMessage   `json:"config"`
	ImageRef   string            `json:"imageRef"`
	ImageID    string            `json:"imageId"`
	State      string            `json:"state"` // a runtimeapi.ContainerState name
	CreatedAt  int64             `json:"createdAt"`
	StartedAt  int64             `json:"startedAt,omitempty"`
	FinishedAt int64             `json:"finishedAt,omitempty"`
	ExitCode   int32             `json:"exitCode,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Message    string            `json:"message,omitempty"`
	Pid        int               `json:"pid,omitempty"`
	PidStart   uint64            `json:"pidStart,omitempty"`
	ShimPid    int               `json:"shimPid,omitempty"`
	ShimStart  uint64            `json:"shimStart,omitempty"`
	LogPath    string            `json:"logPath,omitempty"`
	Cgroups    map[string]string `json:"cgroups"`
	StopSignal string            `json:"stopSignal,omitempty"`
}

// container is a container in memory; its fields are guarded by
// Runtime.mu.
type container struct {
	containerState
	config *runtimeapi.ContainerConfig
	// busy is set while StartContainer runs without the lock.
	busy bool
}

// New opens (or creates) a runtime at cfg.RootDir and finds the sandboxes
// and containers a previous runtime left there.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.RootDir == "" {
		return nil, fmt.Errorf("process runtime: no root directory: %w", spec.ErrInvalid)
	}
	if cfg.Images == nil {
		return nil, fmt.Errorf("process runtime: no image store: %w", spec.ErrInvalid)
	}
	root, err := filepath.Abs(cfg.RootDir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"sandboxes", "containers", "netns"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	inst := cfg.Instance
	if inst == "" {
		inst = shortHash(root)
	}
	cg, err := newCgroupRoot(inst)
	if err != nil {
		return nil, fmt.Errorf("process runtime: cgroups: %w", err)
	}
	r := &Runtime{
		root: root, instance: inst, images: cfg.Images, network: cfg.Network, cgroups: cg, streamAddr: cfg.StreamAddr,
		hostPorts: newHostPorts(inst),
		sandboxes: map[string]*sandbox{}, containers: map[string]*container{}, names: map[string]string{},
	}
	if r.network == nil {
		r.network = NoNetwork{}
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// Instance returns the name of this runtime in host-wide resources.
func (r *Runtime) Instance() string { return r.instance }

// RootDir returns the runtime's state directory.
func (r *Runtime) RootDir() string { return r.root }

func (r *Runtime) sandboxDir(id string) string   { return filepath.Join(r.root, "sandboxes", id) }
func (r *Runtime) containerDir(id string) string { return filepath.Join(r.root, "containers", id) }

// load reads the state files. Unreadable entries are skipped, not fatal.
func (r *Runtime) load() error {
	ents, err := os.ReadDir(filepath.Join(r.root, "sandboxes"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(r.sandboxDir(e.Name()), "sandbox.json"))
		if err != nil {
			continue
		}
		s := &sandbox{config: &runtimeapi.PodSandboxConfig{}}
		if json.Unmarshal(b, &s.sandboxState) != nil || protojson.Unmarshal(s.Config, s.config) != nil {
			continue
		}
		if s.Ready && !s.HostNetwork && !nsenter.IsPinned(s.NetNS) {
			s.Ready = false // e.g. after a reboot
		}
		r.sandboxes[s.ID] = s
		r.names[sandboxNameKey(s.config.GetMetadata())] = s.ID
		if s.NetworkUp && !s.HostNetwork {
			// Its rules are still in the table; it keeps its ports.
			if ports, err := hostPortsOf(s.config); err == nil {
				_ = r.hostPorts.reserve(s.ID, ports)
			}
		}
	}
	ents, err = os.ReadDir(filepath.Join(r.root, "containers"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(r.containerDir(e.Name()), "container.json"))
		if err != nil {
			continue
		}
		c := &container{config: &runtimeapi.ContainerConfig{}}
		if json.Unmarshal(b, &c.containerState) != nil || protojson.Unmarshal(c.Config, c.config) != nil {
			continue
		}
		r.containers[c.ID] = c
		r.names[containerNameKey(c.SandboxID, c.config.GetMetadata())] = c.ID
		r.refreshLocked(c)
	}
	return nil
}

func (r *Runtime) saveSandboxLocked(s *sandbox) error {
	b, err := json.Marshal(&s.sandboxState)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.sandboxDir(s.ID), "sandbox.json"), b)
}

func (r *Runtime) saveContainerLocked(c *container) error {
	b, err := json.Marshal(&c.containerState)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.containerDir(c.ID), "container.json"), b)
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sandboxNameKey(m *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("sandbox/%s/%s/%s/%d", m.GetNamespace(), m.GetName(), m.GetUid(), m.GetAttempt())
}

func containerNameKey(sandboxID string, m *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("container/%s/%s/%d", sandboxID, m.GetName(), m.GetAttempt())
}

// Errors. CRI callers act on gRPC codes.

func errNotFound(kind, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", kind, id)
}

func errInternal(format string, args ...any) error {
	return status.Errorf(codes.Internal, format, args...)
}

// forgetRemovedLocked drops the sandboxes whose directory is gone (removed
// by another Runtime over the same root).
func (r *Runtime) forgetRemovedLocked() {
	for sid, s := range r.sandboxes {
		if _, err := os.Stat(r.sandboxDir(sid)); errors.Is(err, os.ErrNotExist) {
			delete(r.sandboxes, sid)
			delete(r.names, sandboxNameKey(s.config.GetMetadata()))
		}
	}
}

// lookupSandboxLocked finds a sandbox by ID or unique ID prefix.
func (r *Runtime) lookupSandboxLocked(id string) (*sandbox, error) {
	r.forgetRemovedLocked()
	if s, ok := r.sandboxes[id]; ok {
		return s, nil
	}
	var found *sandbox
	if id != "" {
		for k, s := range r.sandboxes {
			if strings.HasPrefix(k, id) {
				if found != nil {
					return nil, status.Errorf(codes.InvalidArgument, "sandbox ID prefix %q is ambiguous", id)
				}
				found = s
			}
		}
	}
	if found == nil {
		return nil, errNotFound("pod sandbox", id)
	}
	return found, nil
}

// lookupContainerLocked finds a container by ID or unique ID prefix.
// A container whose directory is gone is forgotten, as for sandboxes.
func (r *Runtime) lookupContainerLocked(id string) (*container, error) {
	if c, ok := r.containers[id]; ok {
		if _, err := os.Stat(r.containerDir(c.ID)); errors.Is(err, os.ErrNotExist) && !c.busy {
			delete(r.containers, c.ID)
			delete(r.names, containerNameKey(c.SandboxID, c.config.GetMetadata()))
			return nil, errNotFound("container", id)
		}
		return c, nil
	}
	var found *container
	if id != "" {
		for k, c := range r.containers {
			if strings.HasPrefix(k, id) {
				if found != nil {
					return nil, status.Errorf(codes.InvalidArgument, "container ID prefix %q is ambiguous", id)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, errNotFound("container", id)
	}
	return found, nil
}

// Version implements CRI.
func (r *Runtime) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: RuntimeName, RuntimeVersion: Version, RuntimeApiVersion: "v1"}, nil
}

// Status implements CRI: the runtime and its network are always ready.
func (r *Runtime) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}}}, nil
}

// RunPodSandbox implements CRI: it pins a new network namespace, brings its
// loopback up, creates the sandbox cgroup and calls the Network. Whatever
// was made is undone when a step fails.
//
// In order: checkSandboxConfig refuses what cannot be run; the name is
// reserved; makeSandbox creates the directory, namespaces, cgroup and PID
// holder; the state is saved before the network so that a crash leaves a
// record to clean; connectSandbox sets up the network and host ports; the
// sandbox is saved again, ready.
func (r *Runtime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (_ string, err error) {
	ports, err := checkSandboxConfig(config, runtimeHandler)
	if err != nil {
		return "", err
	}
	raw, err := protojson.Marshal(config)
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "sandbox config: %v", err)
	}
	md := config.GetMetadata()
	id := newID()
	key := sandboxNameKey(md)
	r.mu.Lock()
	if other, dup := r.names[key]; dup {
		r.mu.Unlock()
		return "", status.Errorf(codes.AlreadyExists, "sandbox name %q (namespace %q, uid %q, attempt %d) is reserved for sandbox %q",
			md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt(), other)
	}
	r.names[key] = id
	r.mu.Unlock()

	s := r.newSandbox(id, raw, config)
	defer func() {
		if err != nil {
			_ = r.cleanupSandbox(ctx, s)
			r.mu.Lock()
			delete(r.names, key)
			if len(r.sandboxes) == 0 {
				r.cgroups.removeIfEmpty()
			}
			r.mu.Unlock()
		}
	}()
	if err := r.hostPorts.reserve(id, ports); err != nil {
		return "", err
	}
	if err := r.makeSandbox(s, config); err != nil {
		return "", err
	}
	// Persist before the network so that a crash leaves a record to clean.
	if err := r.saveSandboxLocked(s); err != nil {
		return "", errInternal("sandbox state: %v", err)
	}
	if err := r.connectSandbox(ctx, s); err != nil {
		return "", err
	}
	s.Ready = true
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.saveSandboxLocked(s); err != nil {
		return "", errInternal("sandbox state: %v", err)
	}
	r.sandboxes[id] = s
	return id, nil
}

// checkSandboxConfig refuses, with codes.InvalidArgument, a sandbox config
// without a name, another runtime handler, a PID namespace mode a sandbox
// cannot have, and sysctls that are not namespaced or would change the
// host's network; it returns the host ports to publish (none for a pod on
// the host's network, whose containers bind them themselves).
func checkSandboxConfig(config *runtimeapi.PodSandboxConfig, runtimeHandler string) ([]hostPort, error) {
	if config.GetMetadata().GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "sandbox config has no metadata name")
	}
	if runtimeHandler != "" && runtimeHandler != Name {
		return nil, status.Errorf(codes.InvalidArgument, "runtime handler %q is not supported (only %q or none)", runtimeHandler, Name)
	}
	nsOpts := config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNet := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	switch m := nsOpts.GetPid(); m {
	case runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_NODE:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "sandbox PID namespace mode %v is not supported (POD, CONTAINER or NODE; TARGET applies to containers)", m)
	}
	for k := range config.GetLinux().GetSysctls() {
		if hostNet && sysctlScope(k) == "net" {
			return nil, status.Errorf(codes.InvalidArgument, "sysctl %q would change the host: the sandbox uses the host's network", k)
		}
		if sysctlScope(k) == "" {
			return nil, status.Errorf(codes.InvalidArgument, "sysctl %q is not namespaced (only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are)", k)
		}
	}
	if hostNet {
		return nil, nil
	}
	return hostPortsOf(config)
}

// newSandbox is the state of a new sandbox id, from its config (raw is
// its JSON form): which host namespaces it shares and where its network
// namespace is pinned.
func (r *Runtime) newSandbox(id string, raw []byte, config *runtimeapi.PodSandboxConfig) *sandbox {
	nsOpts := config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	s := &sandbox{config: config, sandboxState: sandboxState{
		ID: id, Config: raw, CreatedAt: time.Now().UnixNano(), NetNS: filepath.Join(r.root, "netns", id),
		HostNetwork: nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		HostPID:     nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE,
		HostIPC:     nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE,
		SharedPID:   nsOpts.GetPid() == runtimeapi.NamespaceMode_POD,
	}}
	if s.HostNetwork {
		s.NetNS = ""
	}
	return s
}

// makeSandbox creates s's directory; unless it uses the host's network, its
// pinned network namespace with loopback up and config's net sysctls; its
// cgroup; and, for a pod-wide PID namespace, the process holding it.
func (r *Runtime) makeSandbox(s *sandbox, config *runtimeapi.PodSandboxConfig) (err error) {
	if err := os.MkdirAll(r.sandboxDir(s.ID), 0o755); err != nil {
		return errInternal("sandbox directory: %v", err)
	}
	if !s.HostNetwork {
		if err := nsenter.Pin(s.NetNS); err != nil {
			return errInternal("sandbox network namespace: %v", err)
		}
		if err := loopbackUp(s.NetNS); err != nil {
			return errInternal("sandbox loopback: %v", err)
		}
		if err := applyNetSysctls(s.NetNS, config.GetLinux().GetSysctls()); err != nil {
			return err
		}
	}
	if s.Cgroups, err = r.cgroups.create("pod-"+s.ID, cgroupResources{}); err != nil {
		return errInternal("sandbox cgroup: %v", err)
	}
	if s.SharedPID {
		if s.PidHolder, s.PidHolderStart, err = r.startPidHolder(s.ID); err != nil {
			return errInternal("sandbox PID namespace: %v", err)
		}
	}
	return nil
}

// connectSandbox sets up s's pod network and publishes its host ports;
// nothing for a sandbox on the host's network.
func (r *Runtime) connectSandbox(ctx context.Context, s *sandbox) error {
	if s.HostNetwork {
		return nil
	}
	ip, err := r.network.Setup(ctx, s.ID, s.NetNS)
	s.NetworkUp = true // even on error: Teardown must run
	if err != nil {
		return errInternal("sandbox network: %v", err)
	}
	s.IP = ip
	if err := r.hostPorts.publish(ctx, s.ID, ip); err != nil {
		return errInternal("sandbox host ports: %v", err)
	}
	return nil
}

// cleanupSandbox releases a sandbox's network, namespace, cgroup and
// directory; used on a failed RunPodSandbox and by RemovePodSandbox.
func (r *Runtime) cleanupSandbox(ctx context.Context, s *sandbox) error {
	var errs []error
	if err := stopPidHolder(s); err != nil {
		errs = append(errs, err)
	}
	if err := r.hostPorts.release(ctx, s.ID); err != nil {
		errs = append(errs, fmt.Errorf("host ports: %w", err))
	}
	if s.NetworkUp {
		if err := r.network.Teardown(ctx, s.ID, s.NetNS); err != nil {
			errs = append(errs, fmt.Errorf("network: %w", err))
		}
	}
	if s.NetNS != "" {
		if err := nsenter.Unpin(s.NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeCgroups(s.Cgroups); err != nil {
		errs = append(errs, err)
	}
	if err := removeStateDir(r.sandboxDir(s.ID)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StopPodSandbox implements CRI: it kills the sandbox's containers at once
// and releases its network. Stopping a stopped or unknown sandbox succeeds
// (CRI: the call is idempotent).
func (r *Runtime) StopPodSandbox(ctx context.Context, podSandboxID string) error {
	r.mu.Lock()
	s, err := r.lookupSandboxLocked(podSandboxID)
	if err == nil {
		// No container starts in it from now on.
		s.Ready = false
	}
	r.mu.Unlock()
	if status.Code(err) == codes.NotFound {
		return nil // CRI: idempotent, nothing left to reclaim
	}
	if err != nil {
		return err
	}
	// Stop every container; one that is being started is waited for.
	deadline := time.Now().Add(shimStartTimeout + killWait)
	for {
		var ids []string
		busy := false
		r.mu.Lock()
		for _, c := range r.containers {
			if c.SandboxID == s.ID {
				ids = append(ids, c.ID)
				busy = busy || c.busy
			}
		}
		r.mu.Unlock()
		for _, id := range ids {
			if err := r.StopContainer(ctx, id, 0); err != nil && status.Code(err) != codes.NotFound {
				return err
			}
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			return errInternal("sandbox %q: a container is still being started", s.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The pod's PID namespace ends with its holder.
	if err := stopPidHolder(s); err != nil {
		return errInternal("sandbox %q: %v", s.ID, err)
	}
	if err := r.hostPorts.release(ctx, s.ID); err != nil {
		return errInternal("sandbox %q: release host ports: %v", s.ID, err)
	}
	if s.NetworkUp {
		if err := r.network.Teardown(ctx, s.ID, s.NetNS); err != nil {
			return errInternal("sandbox %q: release network: %v", s.ID, err)
		}
		s.NetworkUp = false
	}
	if err := r.saveSandboxLocked(s); err != nil {
		return errInternal("sandbox state: %v", err)
	}
	return nil
}

// RemovePodSandbox implements CRI: it stops the sandbox, removes its
// containers and everything the sandbox holds. Removing an unknown sandbox
// succeeds (CRI: removal is idempotent).
func (r *Runtime) RemovePodSandbox(ctx context.Context, podSandboxID string) error {
	r.mu.Lock()
	s, err := r.lookupSandboxLocked(podSandboxID)
	r.mu.Unlock()
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.StopPodSandbox(ctx, s.ID); err != nil {
		return err
	}
	r.mu.Lock()
	var ids []string
	for _, c := range r.containers {
		if c.SandboxID == s.ID {
			ids = append(ids, c.ID)
		}
	}
	r.mu.Unlock()
	for _, id := range ids {
		if err := r.RemoveContainer(ctx, id); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cleanupSandbox(ctx, s); err != nil {
		return errInternal("remove sandbox %q: %v", s.ID, err)
	}
	delete(r.sandboxes, s.ID)
	delete(r.names, sandboxNameKey(s.config.GetMetadata()))
	if len(r.sandboxes) == 0 {
		r.cgroups.removeIfEmpty()
	}
	return nil
}

func (r *Runtime) sandboxStatusLocked(s *sandbox) *runtimeapi.PodSandboxStatus {
	st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if s.Ready {
		st = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	out := &runtimeapi.PodSandboxStatus{
		Id: s.ID, Metadata: s.config.GetMetadata(), State: st, CreatedAt: s.CreatedAt,
		Labels: s.config.GetLabels(), Annotations: s.config.GetAnnotations(), RuntimeHandler: "",
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: mode(s.HostNetwork, runtimeapi.NamespaceMode_POD), Pid: mode(s.HostPID, sandboxPidMode(s)),
			Ipc: mode(s.HostIPC, runtimeapi.NamespaceMode_CONTAINER),
		}}},
	}
	if s.Ready {
		out.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: s.IP}
	}
	return out
}

// mode is NODE when host is set, otherwise m.
func mode(host bool, m runtimeapi.NamespaceMode) runtimeapi.NamespaceMode {
	if host {
		return runtimeapi.NamespaceMode_NODE
	}
	return m
}

// PodSandboxStatus implements CRI.
func (r *Runtime) PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.lookupSandboxLocked(podSandboxID)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: r.sandboxStatusLocked(s)}
	for _, c := range r.containers {
		if c.SandboxID == s.ID {
			r.refreshLocked(c)
			resp.ContainersStatuses = append(resp.ContainersStatuses, r.containerStatusLocked(c))
		}
	}
	if verbose {
		resp.Info = map[string]string{"netns": s.NetNS}
	}
	return resp, nil
}

// labelsMatch reports whether every selector entry is in labels.
func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ListPodSandbox implements CRI, newest first.
func (r *Runtime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetRemovedLocked()
	var out []*runtimeapi.PodSandbox
	for _, s := range r.sandboxes {
		st := r.sandboxStatusLocked(s)
		if filter != nil {
			if filter.Id != "" && !strings.HasPrefix(s.ID, filter.Id) {
				continue
			}
			if filter.State != nil && filter.State.State != st.State {
				continue
			}
			if !labelsMatch(filter.LabelSelector, s.config.GetLabels()) {
				continue
			}
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: s.ID, Metadata: st.Metadata, State: st.State, CreatedAt: s.CreatedAt,
			Labels: st.Labels, Annotations: st.Annotations,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt > out[j].CreatedAt })
	return out, nil
}

// Close implements CRI: it stops the streaming server (ending its
// streams) and, when no sandbox is left, deletes the host ports' nftables
// table. It leaves sandboxes and containers running: a new runtime over
// the same root directory finds them again.
func (r *Runtime) Close(ctx context.Context) error {
	err := r.closeStreaming()
	r.mu.Lock()
	none := len(r.sandboxes) == 0
	r.mu.Unlock()
	if none {
		err = errors.Join(err, r.hostPorts.closeIfUnused(ctx))
	}
	return err
}
