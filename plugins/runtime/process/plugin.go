package process

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
)

// ShimCommand is the hidden `kubelab runtime` subcommand the shim and the
// init are re-executed as. A binary whose main calls RunInitIfRequested
// never reaches it; the kubelab CLI routes it to RunInitIfRequested.
const ShimCommand = "process-shim"

// DefaultPodCIDR is the pod address range of the default bridge network
// (not containerd's default 10.88.0.0/16, so that both can run side by side).
const DefaultPodCIDR = "10.87.0.0/16"

// Options of the plugin (spec.RuntimeConfig.Options).
const (
	// OptionPodCIDR is the IPv4 pod range of the bridge network (the
	// standard spec.RuntimeOptionPodCIDR).
	OptionPodCIDR = spec.RuntimeOptionPodCIDR
	// OptionNetwork is "bridge" (the default) or "none" (loopback only).
	OptionNetwork = "network"
	// OptionInstance names the runtime in host-wide resources (see
	// Config.Instance).
	OptionInstance = "instance"
	// OptionImageDir is the image store's directory; default RootDir/images.
	OptionImageDir = "image-dir"
	// OptionStreamAddr is the host:port of the streaming server (Exec,
	// PortForward); default DefaultStreamAddr.
	OptionStreamAddr = "stream-addr"
)

var _ ImageStore = (*imagestore.Store)(nil)

// Plugin returns the process runtime's registration.
func Plugin() spec.RuntimePlugin {
	return spec.RuntimePlugin{
		Name:        Name,
		Description: "kubelab's own runtime: containers are Linux processes in namespaces and cgroups (root, Linux)",
		New:         newFromSpec,
		ImportImages: func(ctx context.Context, rootDir string, archives []string) error {
			return ImportImages(ctx, filepath.Join(rootDir, "images"), archives)
		},
	}
}

// ImportImages imports the OCI image archives (or layout directories) into
// the image store at dir: the runtime's image directory, RootDir/images
// unless the image-dir option says otherwise.
func ImportImages(ctx context.Context, dir string, archives []string) error {
	st, err := imagestore.Open(dir)
	if err != nil {
		return fmt.Errorf("process runtime: %w", err)
	}
	for _, a := range archives {
		if _, err := st.Import(ctx, a); err != nil {
			return fmt.Errorf("process runtime: importing %s: %w", a, err)
		}
	}
	return nil
}

// newFromSpec is the spec.RuntimeFactory.
func newFromSpec(ctx context.Context, cfg spec.RuntimeConfig) (spec.Runtime, func() error, error) {
	if cfg.Endpoint != "" {
		return nil, nil, fmt.Errorf("process runtime: connects to no endpoint (got %q): %w", cfg.Endpoint, spec.ErrUnsupported)
	}
	if cfg.RootDir == "" {
		return nil, nil, fmt.Errorf("process runtime: no root directory: %w", spec.ErrInvalid)
	}
	opts := map[string]string{OptionPodCIDR: DefaultPodCIDR, OptionNetwork: "bridge", OptionImageDir: filepath.Join(cfg.RootDir, "images"), OptionStreamAddr: DefaultStreamAddr}
	for k, v := range cfg.Options {
		if _, ok := opts[k]; !ok && k != OptionInstance {
			return nil, nil, fmt.Errorf("process runtime: unknown option %q: %w", k, spec.ErrInvalid)
		}
		opts[k] = v
	}
	st, err := imagestore.Open(opts[OptionImageDir])
	if err != nil {
		return nil, nil, fmt.Errorf("process runtime: %w", err)
	}
	if _, _, err := net.SplitHostPort(opts[OptionStreamAddr]); err != nil {
		return nil, nil, fmt.Errorf("process runtime: %s=%q is not host:port: %w", OptionStreamAddr, opts[OptionStreamAddr], spec.ErrInvalid)
	}
	c := Config{RootDir: filepath.Join(cfg.RootDir, "state"), Images: st, Instance: opts[OptionInstance], StreamAddr: opts[OptionStreamAddr]}
	switch opts[OptionNetwork] {
	case "none":
		c.Network = NoNetwork{}
	case "bridge":
		_, cidr, err := net.ParseCIDR(opts[OptionPodCIDR])
		if err != nil || cidr.IP.To4() == nil {
			return nil, nil, fmt.Errorf("process runtime: %s=%q is not an IPv4 CIDR: %w", OptionPodCIDR, opts[OptionPodCIDR], spec.ErrInvalid)
		}
		r, err := New(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		r.network = &BridgeNetwork{Bridge: bridgeName(r.instance), CIDR: cidr, StateDir: filepath.Join(c.RootDir, "ipam")}
		return r, func() error { return nil }, nil
	default:
		return nil, nil, fmt.Errorf("process runtime: %s=%q: want bridge or none: %w", OptionNetwork, opts[OptionNetwork], spec.ErrInvalid)
	}
	r, err := New(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	return r, func() error { return nil }, nil
}

// NewBridgeNetwork returns the default Network of a runtime with the given
// instance name and state directory over the pod range cidr.
func NewBridgeNetwork(instance, stateDir string, cidr *net.IPNet) *BridgeNetwork {
	return &BridgeNetwork{Bridge: bridgeName(instance), CIDR: cidr, StateDir: filepath.Join(stateDir, "ipam")}
}
