// Package hollow is a spec.Runtime that runs nothing, for simulating
// thousands of nodes (like KWOK or kubemark's hollow kubelet): pod sandboxes
// and containers are records in memory, a started container is RUNNING at
// once and EXITED when stopped, and images are "pulled" instantly from no
// registry. Everything the kubelet reads (statuses, lists, stats, image
// file system usage) is answered consistently, with CRI's gRPC status codes
// for bad requests: NotFound for an unknown sandbox, container or image,
// FailedPrecondition for a container in the wrong state, AlreadyExists for
// a reused name, Unimplemented for streaming, checkpointing and events.
//
// Containers can be steered with annotations on their ContainerConfig:
//
//	hollow.kubelab.io/exit-code: "3"    the exit code when stopped or done (default: Options.ExitCode)
//	hollow.kubelab.io/run-for: "10s"    exit by itself this long after starting (a Job's container)
//
// A Runtime is safe for concurrent use. It keeps copies of the configs it is
// given, and every message it returns is the caller's to keep or change.
package hollow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "hollow"

// Version is the runtime version Version reports.
const Version = "0.1.0"

// RuntimeName is the runtime name Version reports.
const RuntimeName = "kubelab-hollow"

// Container annotations the hollow runtime obeys.
const (
	// AnnotationExitCode is a container's exit code when it is stopped or
	// runs out its AnnotationRunFor, an integer 0..255.
	AnnotationExitCode = "hollow.kubelab.io/exit-code"
	// AnnotationRunFor is a Go duration after which a started container
	// exits by itself.
	AnnotationRunFor = "hollow.kubelab.io/run-for"
)

// DefaultPodCIDR is where sandbox IPs come from unless Options.PodCIDR says
// otherwise.
const DefaultPodCIDR = "10.0.0.0/8"

// DefaultImageSize is the size reported for a pulled image.
const DefaultImageSize = 1 << 20

// Options configure a Runtime. The zero value is valid.
type Options struct {
	// ExitCode is the exit code of a stopped container without an
	// AnnotationExitCode; 0 by default.
	ExitCode int32
	// PodCIDR is the range sandbox IPs are handed out from, one per
	// sandbox, in order; DefaultPodCIDR when zero.
	PodCIDR netip.Prefix
	// ImageSize is the size a pulled image reports; DefaultImageSize when 0.
	ImageSize uint64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Runtime is the hollow runtime.
type Runtime struct {
	opts Options

	mu         sync.RWMutex // guards every field below
	sandboxes  map[string]*sandbox
	containers map[string]*container
	images     map[string]*image // by ID
	names      map[string]string // sandbox and container name keys → ID
	tags       map[string]string // image name or digest ref → image ID
	nextIP     netip.Addr        // the next sandbox IP to hand out
	seq        uint64            // creation counter: lists are in creation order
	config     *runtimeapi.RuntimeConfig
}

var _ spec.Runtime = (*Runtime)(nil)

type sandbox struct {
	id         string
	config     *runtimeapi.PodSandboxConfig
	handler    string
	state      runtimeapi.PodSandboxState
	createdAt  int64
	ip         string
	containers map[string]bool
	nameKey    string
	seq        uint64
}

type container struct {
	id        string
	sandboxID string
	config    *runtimeapi.ContainerConfig
	imageID   string
	state     runtimeapi.ContainerState
	createdAt int64
	startedAt int64
	finished  int64
	exitCode  int32
	reason    string
	runFor    time.Duration
	resources *runtimeapi.ContainerResources
	nameKey   string
	seq       uint64
}

type image struct {
	id          string
	repoTags    []string
	repoDigests []string
	size        uint64
}

// New returns an empty hollow runtime.
func New(opts Options) *Runtime {
	if !opts.PodCIDR.IsValid() {
		opts.PodCIDR = netip.MustParsePrefix(DefaultPodCIDR)
	}
	if opts.ImageSize == 0 {
		opts.ImageSize = DefaultImageSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Runtime{
		opts:       opts,
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*container{},
		images:     map[string]*image{},
		names:      map[string]string{},
		tags:       map[string]string{},
		nextIP:     opts.PodCIDR.Masked().Addr().Next(),
	}
}

// newID returns a random 64-hex-digit ID, like containerd's.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

func (r *Runtime) now() int64 { return r.opts.Now().UnixNano() }

func notFound(kind, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", kind, id)
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// Version implements CRI.
func (r *Runtime) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: RuntimeName, RuntimeVersion: Version, RuntimeApiVersion: "v1"}, nil
}

// Status implements CRI: the runtime and its network are always ready.
func (r *Runtime) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			{Type: runtimeapi.NetworkReady, Status: true},
		}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{}}},
	}, nil
}

// RuntimeConfig implements CRI: cgroupfs, as nothing uses cgroups.
func (r *Runtime) RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

// UpdateRuntimeConfig implements CRI: the config is kept and ignored.
func (r *Runtime) UpdateRuntimeConfig(ctx context.Context, cfg *runtimeapi.RuntimeConfig) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.config = cfg
	return nil
}

// Close implements CRI; a hollow runtime holds nothing to release.
func (r *Runtime) Close(ctx context.Context) error { return nil }

// RunPodSandbox implements CRI: the sandbox is READY at once, with the next
// IP of the pod CIDR.
func (r *Runtime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	md := config.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return "", invalid("sandbox config needs metadata with name, namespace and uid")
	}
	if runtimeHandler != "" {
		return "", invalid("runtime handler %q: the hollow runtime has only the default handler", runtimeHandler)
	}
	key := fmt.Sprintf("sandbox/%s/%s/%s/%d", md.GetNamespace(), md.GetName(), md.GetUid(), md.GetAttempt())
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.names[key]; ok {
		return "", status.Errorf(codes.AlreadyExists, "sandbox name %q is reserved for sandbox %q", key, id)
	}
	if !r.opts.PodCIDR.Contains(r.nextIP) {
		return "", status.Errorf(codes.ResourceExhausted, "pod CIDR %s has no address left", r.opts.PodCIDR)
	}
	s := &sandbox{
		id: newID(), config: proto.Clone(config).(*runtimeapi.PodSandboxConfig), handler: runtimeHandler, state: runtimeapi.PodSandboxState_SANDBOX_READY,
		createdAt: r.now(), ip: r.nextIP.String(), containers: map[string]bool{}, nameKey: key,
	}
	r.seq++
	s.seq = r.seq
	r.nextIP = r.nextIP.Next()
	r.sandboxes[s.id] = s
	r.names[key] = s.id
	return s.id, nil
}

// StopPodSandbox implements CRI: its running containers exit, it becomes
// NOTREADY. Stopping a stopped sandbox succeeds.
func (r *Runtime) StopPodSandbox(ctx context.Context, podSandboxID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[podSandboxID]
	if !ok {
		return notFound("sandbox", podSandboxID)
	}
	for cid := range s.containers {
		r.stopLocked(r.containers[cid])
	}
	s.state = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	return nil
}

// RemovePodSandbox implements CRI: the sandbox and its containers go,
// stopped first if need be. Removing an unknown sandbox succeeds (CRI's
// remove is idempotent).
func (r *Runtime) RemovePodSandbox(ctx context.Context, podSandboxID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[podSandboxID]
	if !ok {
		return nil
	}
	for cid := range s.containers {
		c := r.containers[cid]
		delete(r.names, c.nameKey)
		delete(r.containers, cid)
	}
	delete(r.names, s.nameKey)
	delete(r.sandboxes, podSandboxID)
	return nil
}

func (s *sandbox) status() *runtimeapi.PodSandboxStatus {
	return &runtimeapi.PodSandboxStatus{
		Id:        s.id,
		Metadata:  s.metadata(),
		State:     s.state,
		CreatedAt: s.createdAt,
		Network:   &runtimeapi.PodSandboxNetworkStatus{Ip: s.ip},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: proto.Clone(s.config.GetLinux().GetSecurityContext().GetNamespaceOptions()).(*runtimeapi.NamespaceOption),
		}},
		Labels:         maps.Clone(s.config.GetLabels()),
		Annotations:    maps.Clone(s.config.GetAnnotations()),
		RuntimeHandler: s.handler,
	}
}

// PodSandboxStatus implements CRI.
func (r *Runtime) PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[podSandboxID]
	if !ok {
		return nil, notFound("sandbox", podSandboxID)
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: s.status(), Timestamp: r.now()}
	for _, cid := range sortedKeys(s.containers) {
		resp.ContainersStatuses = append(resp.ContainersStatuses, r.containerStatusLocked(r.containers[cid]))
	}
	return resp, nil
}

// ListPodSandbox implements CRI, in creation order. An ID filter matches
// ID prefixes, as containerd's does (crictl's short IDs).
func (r *Runtime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var found []*sandbox
	for _, s := range r.sandboxes {
		if !strings.HasPrefix(s.id, filter.GetId()) {
			continue
		}
		if st := filter.GetState(); st != nil && st.GetState() != s.state {
			continue
		}
		if !labelsMatch(s.config.GetLabels(), filter.GetLabelSelector()) {
			continue
		}
		found = append(found, s)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	out := make([]*runtimeapi.PodSandbox, 0, len(found))
	for _, s := range found {
		out = append(out, &runtimeapi.PodSandbox{
			Id: s.id, Metadata: s.metadata(), State: s.state, CreatedAt: s.createdAt,
			Labels: maps.Clone(s.config.GetLabels()), Annotations: maps.Clone(s.config.GetAnnotations()), RuntimeHandler: s.handler,
		})
	}
	return out, nil
}

// labelsMatch reports whether labels has every key=value of selector.
func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CreateContainer implements CRI: the sandbox must be READY and the image
// pulled; the container is CREATED.
func (r *Runtime) CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	md := config.GetMetadata()
	if md.GetName() == "" {
		return "", invalid("container config needs metadata with a name")
	}
	exitCode := int64(-1)
	if v, ok := config.GetAnnotations()[AnnotationExitCode]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 || n > 255 {
			return "", invalid("annotation %s=%q: want 0..255", AnnotationExitCode, v)
		}
		exitCode = n
	}
	var runFor time.Duration
	if v, ok := config.GetAnnotations()[AnnotationRunFor]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return "", invalid("annotation %s=%q: want a non-negative duration", AnnotationRunFor, v)
		}
		runFor = d
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[podSandboxID]
	if !ok {
		return "", notFound("sandbox", podSandboxID)
	}
	if s.state != runtimeapi.PodSandboxState_SANDBOX_READY {
		return "", status.Errorf(codes.FailedPrecondition, "sandbox %q is not ready", podSandboxID)
	}
	img, ok := r.resolveImageLocked(config.GetImage().GetImage())
	if !ok {
		return "", status.Errorf(codes.NotFound, "image %q not found: pull it first", config.GetImage().GetImage())
	}
	key := fmt.Sprintf("container/%s/%s/%d", podSandboxID, md.GetName(), md.GetAttempt())
	if id, ok := r.names[key]; ok {
		return "", status.Errorf(codes.AlreadyExists, "container name %q is reserved for container %q", key, id)
	}
	c := &container{
		id: newID(), sandboxID: podSandboxID, config: proto.Clone(config).(*runtimeapi.ContainerConfig), imageID: img.id,
		state: runtimeapi.ContainerState_CONTAINER_CREATED, createdAt: r.now(),
		exitCode: r.opts.ExitCode, runFor: runFor, resources: resourcesOf(config), nameKey: key,
	}
	if exitCode >= 0 {
		c.exitCode = int32(exitCode)
	}
	r.seq++
	c.seq = r.seq
	r.containers[c.id] = c
	r.names[key] = c.id
	s.containers[c.id] = true
	return c.id, nil
}

// metadata returns a copy of the sandbox's metadata.
func (s *sandbox) metadata() *runtimeapi.PodSandboxMetadata {
	return proto.Clone(s.config.GetMetadata()).(*runtimeapi.PodSandboxMetadata)
}

// metadata returns a copy of the container's metadata.
func (c *container) metadata() *runtimeapi.ContainerMetadata {
	return proto.Clone(c.config.GetMetadata()).(*runtimeapi.ContainerMetadata)
}

// mounts returns a copy of the container's mounts.
func (c *container) mounts() []*runtimeapi.Mount {
	var out []*runtimeapi.Mount
	for _, m := range c.config.GetMounts() {
		out = append(out, proto.Clone(m).(*runtimeapi.Mount))
	}
	return out
}

// image returns a copy of the container's image spec.
func (c *container) image() *runtimeapi.ImageSpec {
	return proto.Clone(c.config.GetImage()).(*runtimeapi.ImageSpec)
}

// resourcesOf returns the container's resources as CRI reports them.
func resourcesOf(config *runtimeapi.ContainerConfig) *runtimeapi.ContainerResources {
	if l := config.GetLinux().GetResources(); l != nil {
		return &runtimeapi.ContainerResources{Linux: l}
	}
	return nil
}

// containerLocked finds a container, bringing a run-for container that has
// run its time to EXITED first. r.mu must be held for writing.
func (r *Runtime) containerLocked(id string) (*container, error) {
	c, ok := r.containers[id]
	if !ok {
		return nil, notFound("container", id)
	}
	r.settleLocked(c)
	return c, nil
}

// settleLocked exits a RUNNING container whose run-for time is up, as of
// that moment.
func (r *Runtime) settleLocked(c *container) {
	if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING || c.runFor == 0 {
		return
	}
	if end := c.startedAt + c.runFor.Nanoseconds(); r.now() >= end {
		r.exitLocked(c, end)
	}
}

// exitLocked makes c EXITED at finishedAt with its exit code.
func (r *Runtime) exitLocked(c *container, finishedAt int64) {
	c.state = runtimeapi.ContainerState_CONTAINER_EXITED
	c.finished = finishedAt
	c.reason = "Completed"
	if c.exitCode != 0 {
		c.reason = "Error"
	}
}

// stopLocked stops a RUNNING container now; other states are unchanged.
func (r *Runtime) stopLocked(c *container) {
	r.settleLocked(c)
	if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
		r.exitLocked(c, r.now())
	}
}

// StartContainer implements CRI: a CREATED container is RUNNING at once;
// any other state is FailedPrecondition.
func (r *Runtime) StartContainer(ctx context.Context, containerID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return err
	}
	if c.state != runtimeapi.ContainerState_CONTAINER_CREATED {
		return status.Errorf(codes.FailedPrecondition, "container %q is %s, not CREATED", containerID, c.state)
	}
	if s := r.sandboxes[c.sandboxID]; s == nil || s.state != runtimeapi.PodSandboxState_SANDBOX_READY {
		return status.Errorf(codes.FailedPrecondition, "container %q: sandbox %q is not ready", containerID, c.sandboxID)
	}
	c.state = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.startedAt = r.now()
	return nil
}

// StopContainer implements CRI: a RUNNING container is EXITED at once with
// its exit code; stopping a container that is not running succeeds.
func (r *Runtime) StopContainer(ctx context.Context, containerID string, timeout int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return err
	}
	r.stopLocked(c)
	return nil
}

// RemoveContainer implements CRI: the container goes, stopped first if
// need be. Removing an unknown container succeeds (CRI's remove is
// idempotent).
func (r *Runtime) RemoveContainer(ctx context.Context, containerID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[containerID]
	if !ok {
		return nil
	}
	if s := r.sandboxes[c.sandboxID]; s != nil {
		delete(s.containers, c.id)
	}
	delete(r.names, c.nameKey)
	delete(r.containers, containerID)
	return nil
}

// ListContainers implements CRI, in creation order. An ID filter matches
// ID prefixes, as containerd's does (crictl's short IDs).
func (r *Runtime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []*container
	for _, c := range r.containers {
		r.settleLocked(c)
		if !strings.HasPrefix(c.id, filter.GetId()) {
			continue
		}
		if sid := filter.GetPodSandboxId(); sid != "" && c.sandboxID != sid {
			continue
		}
		if st := filter.GetState(); st != nil && st.GetState() != c.state {
			continue
		}
		if !labelsMatch(c.config.GetLabels(), filter.GetLabelSelector()) {
			continue
		}
		found = append(found, c)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	out := make([]*runtimeapi.Container, 0, len(found))
	for _, c := range found {
		out = append(out, &runtimeapi.Container{
			Id: c.id, PodSandboxId: c.sandboxID, Metadata: c.metadata(), Image: c.image(),
			ImageRef: c.imageID, ImageId: c.imageID, State: c.state, CreatedAt: c.createdAt,
			Labels: maps.Clone(c.config.GetLabels()), Annotations: maps.Clone(c.config.GetAnnotations()),
		})
	}
	return out, nil
}

func (r *Runtime) containerStatusLocked(c *container) *runtimeapi.ContainerStatus {
	r.settleLocked(c)
	st := &runtimeapi.ContainerStatus{
		Id: c.id, Metadata: c.metadata(), State: c.state,
		CreatedAt: c.createdAt, StartedAt: c.startedAt, FinishedAt: c.finished,
		Image: c.image(), ImageRef: c.imageID, ImageId: c.imageID,
		Labels: maps.Clone(c.config.GetLabels()), Annotations: maps.Clone(c.config.GetAnnotations()),
		Mounts: c.mounts(), Resources: proto.Clone(c.resources).(*runtimeapi.ContainerResources),
	}
	if s := r.sandboxes[c.sandboxID]; s != nil && s.config.GetLogDirectory() != "" && c.config.GetLogPath() != "" {
		st.LogPath = s.config.GetLogDirectory() + "/" + c.config.GetLogPath()
	}
	if c.state == runtimeapi.ContainerState_CONTAINER_EXITED {
		st.ExitCode, st.Reason = c.exitCode, c.reason
	}
	return st
}

// ContainerStatus implements CRI.
func (r *Runtime) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatusResponse{Status: r.containerStatusLocked(c)}, nil
}

// UpdateContainerResources implements CRI: the resources are recorded and
// reported by ContainerStatus.
func (r *Runtime) UpdateContainerResources(ctx context.Context, containerID string, resources *runtimeapi.ContainerResources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return err
	}
	if c.state == runtimeapi.ContainerState_CONTAINER_EXITED {
		return status.Errorf(codes.FailedPrecondition, "container %q has exited", containerID)
	}
	c.resources = proto.Clone(resources).(*runtimeapi.ContainerResources)
	return nil
}

// ExecSync implements CRI: in a RUNNING container, every command succeeds
// with no output (so exec probes pass); elsewhere it is FailedPrecondition.
func (r *Runtime) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return nil, nil, err
	}
	if len(cmd) == 0 {
		return nil, nil, invalid("exec without a command")
	}
	if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "container %q is %s, not RUNNING", containerID, c.state)
	}
	return []byte{}, []byte{}, nil
}

// Exec implements CRI: unimplemented, there is no process to stream.
func (r *Runtime) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, status.Error(codes.Unimplemented, "the hollow runtime has no processes to exec into")
}

// Attach implements CRI: unimplemented.
func (r *Runtime) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, status.Error(codes.Unimplemented, "the hollow runtime has no processes to attach to")
}

// PortForward implements CRI: unimplemented.
func (r *Runtime) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, status.Error(codes.Unimplemented, "the hollow runtime has no network to forward to")
}

// ReopenContainerLog implements CRI: a no-op for a RUNNING container.
func (r *Runtime) ReopenContainerLog(ctx context.Context, containerID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return err
	}
	if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return status.Errorf(codes.FailedPrecondition, "container %q is not running", containerID)
	}
	return nil
}

// CheckpointContainer implements CRI: unimplemented.
func (r *Runtime) CheckpointContainer(ctx context.Context, options *runtimeapi.CheckpointContainerRequest) error {
	return status.Error(codes.Unimplemented, "checkpointing is not supported by the hollow runtime")
}

// CheckpointPod implements CRI: unimplemented.
func (r *Runtime) CheckpointPod(ctx context.Context, options *runtimeapi.CheckpointPodRequest) error {
	return status.Error(codes.Unimplemented, "checkpointing is not supported by the hollow runtime")
}

// RestorePod implements CRI: unimplemented.
func (r *Runtime) RestorePod(ctx context.Context, options *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, status.Error(codes.Unimplemented, "checkpointing is not supported by the hollow runtime")
}

// GetContainerEvents implements CRI: unimplemented, so the kubelet polls
// (generic PLEG).
func (r *Runtime) GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, cb func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	return status.Error(codes.Unimplemented, "container events are not supported by the hollow runtime")
}

// UpdatePodSandboxResources implements CRI: accepted and ignored.
func (r *Runtime) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.sandboxes[req.GetPodSandboxId()]; !ok {
		return nil, notFound("sandbox", req.GetPodSandboxId())
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
