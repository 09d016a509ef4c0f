// Package criserver serves any spec.Runtime over CRI gRPC
// (k8s.io/cri-api/pkg/apis/runtime/v1), so that the kubelet, crictl and
// critest can talk to an in-process runtime through a unix socket.
//
// The adapters only translate requests and responses; errors keep the gRPC
// status the runtime returned. The streaming list methods (Stream*) and
// GetContainerEvents answer Unimplemented.
package criserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/kubelab/kubelab/spec"
)

// RuntimeServer adapts a spec.Runtime to runtimeapi.RuntimeServiceServer.
type RuntimeServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	// Runtime is the runtime served.
	Runtime spec.Runtime
}

// ImageServer adapts a spec.Runtime to runtimeapi.ImageServiceServer.
type ImageServer struct {
	runtimeapi.UnimplementedImageServiceServer
	// Runtime is the runtime served.
	Runtime spec.Runtime
}

var (
	_ runtimeapi.RuntimeServiceServer = (*RuntimeServer)(nil)
	_ runtimeapi.ImageServiceServer   = (*ImageServer)(nil)
)

// Register registers both CRI services of rt on s.
func Register(s *grpc.Server, rt spec.Runtime) {
	runtimeapi.RegisterRuntimeServiceServer(s, &RuntimeServer{Runtime: rt})
	runtimeapi.RegisterImageServiceServer(s, &ImageServer{Runtime: rt})
}

// Listen opens a listener for a CRI endpoint such as
// "unix:///run/kubelab/process.sock" (or a plain path). A stale socket file
// is replaced; the socket's directory is created.
func Listen(endpoint string) (net.Listener, error) {
	path := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Scheme != "" {
		if u.Scheme != "unix" {
			return nil, fmt.Errorf("endpoint %q: only unix:// endpoints are supported: %w", endpoint, spec.ErrInvalid)
		}
		path = u.Path
	}
	if path == "" {
		return nil, fmt.Errorf("endpoint %q names no socket path: %w", endpoint, spec.ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}

// Version implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return s.Runtime.Version(ctx, req.Version)
}

// RunPodSandbox implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	id, err := s.Runtime.RunPodSandbox(ctx, req.Config, req.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// StopPodSandbox implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	return &runtimeapi.StopPodSandboxResponse{}, s.Runtime.StopPodSandbox(ctx, req.PodSandboxId)
}

// RemovePodSandbox implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	return &runtimeapi.RemovePodSandboxResponse{}, s.Runtime.RemovePodSandbox(ctx, req.PodSandboxId)
}

// PodSandboxStatus implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	return s.Runtime.PodSandboxStatus(ctx, req.PodSandboxId, req.Verbose)
}

// ListPodSandbox implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	items, err := s.Runtime.ListPodSandbox(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

// CreateContainer implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	id, err := s.Runtime.CreateContainer(ctx, req.PodSandboxId, req.Config, req.SandboxConfig)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// StartContainer implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	return &runtimeapi.StartContainerResponse{}, s.Runtime.StartContainer(ctx, req.ContainerId)
}

// StopContainer implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	return &runtimeapi.StopContainerResponse{}, s.Runtime.StopContainer(ctx, req.ContainerId, req.Timeout)
}

// RemoveContainer implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	return &runtimeapi.RemoveContainerResponse{}, s.Runtime.RemoveContainer(ctx, req.ContainerId)
}

// ListContainers implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	cs, err := s.Runtime.ListContainers(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainersResponse{Containers: cs}, nil
}

// ContainerStatus implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	return s.Runtime.ContainerStatus(ctx, req.ContainerId, req.Verbose)
}

// UpdateContainerResources implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	return &runtimeapi.UpdateContainerResourcesResponse{}, s.Runtime.UpdateContainerResources(ctx, req.ContainerId, &runtimeapi.ContainerResources{Linux: req.Linux, Windows: req.Windows})
}

// ReopenContainerLog implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	return &runtimeapi.ReopenContainerLogResponse{}, s.Runtime.ReopenContainerLog(ctx, req.ContainerId)
}

// ExecSync implements runtimeapi.RuntimeServiceServer. A command that exits
// non-zero is a response with its exit code, not an error.
func (s *RuntimeServer) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	stdout, stderr, err := s.Runtime.ExecSync(ctx, req.ContainerId, req.Cmd, time.Duration(req.Timeout)*time.Second)
	var ee utilexec.ExitError
	if errors.As(err, &ee) {
		return &runtimeapi.ExecSyncResponse{Stdout: stdout, Stderr: stderr, ExitCode: int32(ee.ExitStatus())}, nil
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout, Stderr: stderr}, nil
}

// Exec implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.Runtime.Exec(ctx, req)
}

// Attach implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.Runtime.Attach(ctx, req)
}

// PortForward implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.Runtime.PortForward(ctx, req)
}

// ContainerStats implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	st, err := s.Runtime.ContainerStats(ctx, req.ContainerId)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	st, err := s.Runtime.ListContainerStats(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: st}, nil
}

// PodSandboxStats implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	st, err := s.Runtime.PodSandboxStats(ctx, req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	st, err := s.Runtime.ListPodSandboxStats(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: st}, nil
}

// UpdateRuntimeConfig implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, s.Runtime.UpdateRuntimeConfig(ctx, req.RuntimeConfig)
}

// Status implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return s.Runtime.Status(ctx, req.Verbose)
}

// CheckpointContainer implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return &runtimeapi.CheckpointContainerResponse{}, s.Runtime.CheckpointContainer(ctx, req)
}

// CheckpointPod implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	return &runtimeapi.CheckpointPodResponse{}, s.Runtime.CheckpointPod(ctx, req)
}

// RestorePod implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return s.Runtime.RestorePod(ctx, req)
}

// ListMetricDescriptors implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	d, err := s.Runtime.ListMetricDescriptors(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: d}, nil
}

// ListPodSandboxMetrics implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	m, err := s.Runtime.ListPodSandboxMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: m}, nil
}

// RuntimeConfig implements runtimeapi.RuntimeServiceServer.
func (s *RuntimeServer) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return s.Runtime.RuntimeConfig(ctx)
}

// ListImages implements runtimeapi.ImageServiceServer.
func (s *ImageServer) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.Runtime.ListImages(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListImagesResponse{Images: imgs}, nil
}

// ImageStatus implements runtimeapi.ImageServiceServer.
func (s *ImageServer) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	return s.Runtime.ImageStatus(ctx, req.Image, req.Verbose)
}

// PullImage implements runtimeapi.ImageServiceServer.
func (s *ImageServer) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref, err := s.Runtime.PullImage(ctx, req.Image, req.Auth, req.SandboxConfig)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: ref}, nil
}

// RemoveImage implements runtimeapi.ImageServiceServer.
func (s *ImageServer) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	return &runtimeapi.RemoveImageResponse{}, s.Runtime.RemoveImage(ctx, req.Image)
}

// ImageFsInfo implements runtimeapi.ImageServiceServer.
func (s *ImageServer) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return s.Runtime.ImageFsInfo(ctx)
}
