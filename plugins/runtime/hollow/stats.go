package hollow

import (
	"context"
	"maps"
	"sort"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// zero returns a UInt64Value of 0.
func zero() *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: 0} }

func (r *Runtime) containerStatsLocked(c *container, ts int64) *runtimeapi.ContainerStats {
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.id, Metadata: c.metadata(),
			Labels: maps.Clone(c.config.GetLabels()), Annotations: maps.Clone(c.config.GetAnnotations()),
		},
		Cpu:           &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: zero(), UsageNanoCores: zero()},
		Memory:        &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: zero(), UsageBytes: zero(), RssBytes: zero(), AvailableBytes: zero(), PageFaults: zero(), MajorPageFaults: zero()},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: ts, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/hollow"}, UsedBytes: zero(), InodesUsed: zero()},
	}
}

// ContainerStats implements CRI: a hollow container uses nothing.
func (r *Runtime) ContainerStats(ctx context.Context, containerID string) (*runtimeapi.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.containerLocked(containerID)
	if err != nil {
		return nil, err
	}
	return r.containerStatsLocked(c, r.now()), nil
}

// ListContainerStats implements CRI for RUNNING containers.
func (r *Runtime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.now()
	var out []*runtimeapi.ContainerStats
	for _, c := range r.containers {
		r.settleLocked(c)
		if c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if id := filter.GetId(); id != "" && c.id != id {
			continue
		}
		if sid := filter.GetPodSandboxId(); sid != "" && c.sandboxID != sid {
			continue
		}
		if !labelsMatch(c.config.GetLabels(), filter.GetLabelSelector()) {
			continue
		}
		out = append(out, r.containerStatsLocked(c, ts))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attributes.Id < out[j].Attributes.Id })
	return out, nil
}

func (r *Runtime) sandboxStatsLocked(s *sandbox, ts int64) *runtimeapi.PodSandboxStats {
	st := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: s.id, Metadata: s.metadata(),
			Labels: maps.Clone(s.config.GetLabels()), Annotations: maps.Clone(s.config.GetAnnotations()),
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu:     &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: zero(), UsageNanoCores: zero()},
			Memory:  &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: zero(), UsageBytes: zero(), RssBytes: zero(), AvailableBytes: zero(), PageFaults: zero(), MajorPageFaults: zero()},
			Network: &runtimeapi.NetworkUsage{Timestamp: ts, DefaultInterface: &runtimeapi.NetworkInterfaceUsage{Name: "eth0", RxBytes: zero(), RxErrors: zero(), TxBytes: zero(), TxErrors: zero()}},
			Process: &runtimeapi.ProcessUsage{Timestamp: ts, ProcessCount: zero()},
		},
	}
	for _, cid := range sortedKeys(s.containers) {
		c := r.containers[cid]
		r.settleLocked(c)
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			st.Linux.Containers = append(st.Linux.Containers, r.containerStatsLocked(c, ts))
		}
	}
	return st
}

// PodSandboxStats implements CRI: a hollow sandbox uses nothing.
func (r *Runtime) PodSandboxStats(ctx context.Context, podSandboxID string) (*runtimeapi.PodSandboxStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[podSandboxID]
	if !ok {
		return nil, notFound("sandbox", podSandboxID)
	}
	return r.sandboxStatsLocked(s, r.now()), nil
}

// ListPodSandboxStats implements CRI for READY sandboxes.
func (r *Runtime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.now()
	var out []*runtimeapi.PodSandboxStats
	for _, s := range r.sandboxes {
		if s.state != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if id := filter.GetId(); id != "" && s.id != id {
			continue
		}
		if !labelsMatch(s.config.GetLabels(), filter.GetLabelSelector()) {
			continue
		}
		out = append(out, r.sandboxStatsLocked(s, ts))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attributes.Id < out[j].Attributes.Id })
	return out, nil
}

// ListMetricDescriptors implements CRI: there are no metrics.
func (r *Runtime) ListMetricDescriptors(ctx context.Context) ([]*runtimeapi.MetricDescriptor, error) {
	return []*runtimeapi.MetricDescriptor{}, nil
}

// ListPodSandboxMetrics implements CRI: there are no metrics.
func (r *Runtime) ListPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	return []*runtimeapi.PodSandboxMetrics{}, nil
}
