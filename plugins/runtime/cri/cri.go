// Package cri is the runtime plugin that connects to any CRI runtime over
// its gRPC socket: containerd, CRI-O, or kubelab's own process runtime
// served by `kubelab runtime --listen`. It is k8s.io/cri-client's remote
// runtime and image services, the kubelet's own client, behind
// spec.Runtime: nothing is translated, so what the conformance suite and
// the kubelet see is exactly what the runtime answers.
//
// Options (spec.RuntimeConfig.Options):
//
//	endpoint        the CRI socket, "unix:///run/containerd/containerd.sock"
//	                (or spec.RuntimeConfig.Endpoint); required
//	image-endpoint  the image service's socket when it differs; default endpoint
//	timeout         how long to wait for the connection, and for each call
//	                (cri-client uses one timeout for both); default 2m, as the kubelet's
//	                --runtime-request-timeout
//	pod-cidr        spec.RuntimeOptionPodCIDR, accepted and ignored: the
//	                runtime behind the socket assigns pod addresses (its CNI config)
package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"

	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "cri"

// Options of the plugin (spec.RuntimeConfig.Options).
const (
	// OptionEndpoint is the CRI runtime service's endpoint.
	OptionEndpoint = "endpoint"
	// OptionImageEndpoint is the CRI image service's endpoint.
	OptionImageEndpoint = "image-endpoint"
	// OptionTimeout is the connection and per-call timeout, a Go duration.
	OptionTimeout = "timeout"
)

// DefaultTimeout is the connection and per-call timeout when the timeout
// option is not set: the kubelet's default --runtime-request-timeout.
const DefaultTimeout = 2 * time.Minute

// Plugin returns the CRI client plugin's registration.
func Plugin() spec.RuntimePlugin {
	return spec.RuntimePlugin{
		Name:        Name,
		Description: "any CRI runtime (containerd, CRI-O, `kubelab runtime --listen`) over its gRPC socket, with k8s.io/cri-client",
		New:         newFromSpec,
	}
}

// newFromSpec is the spec.RuntimeFactory. It starts nothing and keeps no
// files: RootDir is ignored; the closer closes the connections.
func newFromSpec(ctx context.Context, cfg spec.RuntimeConfig) (spec.Runtime, func() error, error) {
	endpoint, imageEndpoint := cfg.Endpoint, ""
	timeout := DefaultTimeout
	for k, v := range cfg.Options {
		switch k {
		case OptionEndpoint:
			if endpoint != "" && endpoint != v {
				return nil, nil, fmt.Errorf("cri runtime: endpoint %q and option %s=%q disagree: %w", endpoint, k, v, spec.ErrInvalid)
			}
			endpoint = v
		case OptionImageEndpoint:
			imageEndpoint = v
		case OptionTimeout:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, nil, fmt.Errorf("cri runtime: option %s=%q: want a positive duration such as 30s: %w", k, v, spec.ErrInvalid)
			}
			timeout = d
		case spec.RuntimeOptionPodCIDR:
			// The runtime behind the socket addresses its pods itself.
		default:
			return nil, nil, fmt.Errorf("cri runtime: unknown option %q (known: %s, %s, %s): %w", k, OptionEndpoint, OptionImageEndpoint, OptionTimeout, spec.ErrInvalid)
		}
	}
	if endpoint == "" {
		return nil, nil, fmt.Errorf("cri runtime: no endpoint: set the %s option (or the runtime endpoint), e.g. unix:///run/containerd/containerd.sock: %w", OptionEndpoint, spec.ErrInvalid)
	}
	if imageEndpoint == "" {
		imageEndpoint = endpoint
	}
	for _, e := range []string{endpoint, imageEndpoint} {
		if !strings.HasPrefix(e, "unix://") {
			return nil, nil, fmt.Errorf("cri runtime: endpoint %q: want unix:///path/to.sock: %w", e, spec.ErrInvalid)
		}
	}
	r, err := Connect(ctx, endpoint, imageEndpoint, timeout)
	if err != nil {
		return nil, nil, err
	}
	return r, func() error { return r.Close(context.Background()) }, nil
}

// Runtime is a connection to a CRI runtime's runtime and image services.
// Its methods are cri-client's, safe for concurrent use.
type Runtime struct {
	internalapi.RuntimeService
	internalapi.ImageManagerService
}

var _ spec.Runtime = (*Runtime)(nil)

// Connect connects to the CRI runtime service at endpoint and the image
// service at imageEndpoint, and checks that both answer (cri-client asks
// the runtime for its version) within timeout, which also bounds each later
// call.
func Connect(ctx context.Context, endpoint, imageEndpoint string, timeout time.Duration) (*Runtime, error) {
	// cri-client checks the connection the same way, but leaks the gRPC
	// connection when the check fails: check first with one we close.
	if err := probe(ctx, endpoint, imageEndpoint, timeout); err != nil {
		return nil, err
	}
	rs, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).WithConnectionTimeout(timeout).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("cri runtime: connecting to %s: %w", endpoint, err)
	}
	is, err := criclient.NewRemoteImageServiceBuilder().WithEndpoint(imageEndpoint).WithConnectionTimeout(timeout).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		rs.Close(ctx)
		return nil, fmt.Errorf("cri runtime: connecting to the image service at %s: %w", imageEndpoint, err)
	}
	return &Runtime{RuntimeService: rs, ImageManagerService: is}, nil
}

// probe calls Version on the runtime service and ImageFsInfo on the image
// service, as cri-client's own check does, on connections it closes.
func probe(ctx context.Context, endpoint, imageEndpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("cri runtime: connecting to %s: %w", endpoint, err)
	}
	defer conn.Close()
	if _, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		return fmt.Errorf("cri runtime: no CRI runtime service answers at %s: %w", endpoint, err)
	}
	if imageEndpoint != endpoint {
		conn.Close()
		if conn, err = grpc.NewClient(imageEndpoint, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return fmt.Errorf("cri runtime: connecting to %s: %w", imageEndpoint, err)
		}
		defer conn.Close()
	}
	if _, err := runtimeapi.NewImageServiceClient(conn).ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{}); err != nil {
		return fmt.Errorf("cri runtime: no CRI image service answers at %s: %w", imageEndpoint, err)
	}
	return nil
}

// Close closes both connections.
func (r *Runtime) Close(ctx context.Context) error {
	return errors.Join(r.RuntimeService.Close(ctx), r.ImageManagerService.Close(ctx))
}
