package process

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (r *Runtime) statsLocked(c *container) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.ID, Metadata: c.config.GetMetadata(), Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
	}}
	st, err := readCgroupStats(c.Cgroups)
	if err != nil {
		return out
	}
	out.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUNanos}}
	out.Memory = &runtimeapi.MemoryUsage{
		Timestamp:       now,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.MemoryWorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
	}
	return out
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
