package process

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// usage reads CPU and memory usage from cgroups (nil, nil when they are
// gone).
func usage(cgroups map[string]string) (*runtimeapi.CpuUsage, *runtimeapi.MemoryUsage) {
	st, err := readCgroupStats(cgroups)
	if err != nil {
		return nil, nil
	}
	now := time.Now().UnixNano()
	return &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUNanos}},
		&runtimeapi.MemoryUsage{
			Timestamp:       now,
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.MemoryWorkingSet},
			UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
		}
}

func (r *Runtime) statsLocked(c *container) *runtimeapi.ContainerStats {
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.ID, Metadata: c.config.GetMetadata(), Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
	}}
	out.Cpu, out.Memory = usage(c.Cgroups)
	return out
}

func (r *Runtime) sandboxStatsLocked(s *sandbox) *runtimeapi.PodSandboxStats {
	out := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: s.ID, Metadata: s.config.GetMetadata(), Labels: s.config.GetLabels(), Annotations: s.config.GetAnnotations(),
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{},
	}
	// The sandbox cgroup is its containers' parent: its counters are
	// theirs, summed.
	out.Linux.Cpu, out.Linux.Memory = usage(s.Cgroups)
	for _, c := range r.containers {
		if c.SandboxID == s.ID {
			out.Linux.Containers = append(out.Linux.Containers, r.statsLocked(c))
		}
	}
	return out
}

// PodSandboxStats implements CRI from the sandbox's cgroup.
func (r *Runtime) PodSandboxStats(ctx context.Context, podSandboxID string) (*runtimeapi.PodSandboxStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.lookupSandboxLocked(podSandboxID)
	if err != nil {
		return nil, err
	}
	return r.sandboxStatsLocked(s), nil
}

// ListPodSandboxStats implements CRI.
func (r *Runtime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetRemovedLocked()
	var out []*runtimeapi.PodSandboxStats
	for _, s := range r.sandboxes {
		if filter != nil && (filter.Id != "" && s.ID != filter.Id || !labelsMatch(filter.LabelSelector, s.config.GetLabels())) {
			continue
		}
		out = append(out, r.sandboxStatsLocked(s))
	}
	return out, nil
}

// UpdateContainerResources implements CRI: the container's CPU shares and
// quota and memory limit change in its cgroups (other fields are ignored).
func (r *Runtime) UpdateContainerResources(ctx context.Context, containerID string, resources *runtimeapi.ContainerResources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookupContainerLocked(containerID)
	if err != nil {
		return err
	}
	lr := resources.GetLinux()
	if lr == nil {
		return nil
	}
	res := cgroupResources{CPUShares: lr.CpuShares, CPUQuota: lr.CpuQuota, CPUPeriod: lr.CpuPeriod, MemoryLimit: lr.MemoryLimitInBytes}
	if err := r.cgroups.apply(c.Cgroups, res); err != nil {
		return status.Errorf(codes.InvalidArgument, "update resources of container %q: %v", c.ID, err)
	}
	// Record the new limits where ContainerStatus reports them.
	c.config.Linux = orEmpty(c.config.Linux)
	c.config.Linux.Resources = lr
	if raw, err := protojson.Marshal(c.config); err == nil {
		c.Config = raw
		_ = r.saveContainerLocked(c)
	}
	return nil
}

func orEmpty(l *runtimeapi.LinuxContainerConfig) *runtimeapi.LinuxContainerConfig {
	if l == nil {
		return &runtimeapi.LinuxContainerConfig{}
	}
	return l
}

// ContainerStats implements CRI from the container's cgroups.
func (r *Runtime) ContainerStats(ctx context.Context, containerID string) (*runtimeapi.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookupContainerLocked(containerID)
	if err != nil {
		return nil, err
	}
	return r.statsLocked(c), nil
}

// ListContainerStats implements CRI.
func (r *Runtime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.ContainerStats
	for _, c := range r.containers {
		if filter != nil {
			if filter.Id != "" && c.ID != filter.Id {
				continue
			}
			if filter.PodSandboxId != "" && c.SandboxID != filter.PodSandboxId {
				continue
			}
			if !labelsMatch(filter.LabelSelector, c.config.GetLabels()) {
				continue
			}
		}
		out = append(out, r.statsLocked(c))
	}
	return out, nil
}
