package hollow

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/kubelab/kubelab/spec"
)

// Options of the plugin (spec.RuntimeConfig.Options).
const (
	// OptionExitCode is Options.ExitCode, an integer 0..255.
	OptionExitCode = "exit-code"
	// OptionPodCIDR is Options.PodCIDR, e.g. "10.244.1.0/24" (the standard
	// spec.RuntimeOptionPodCIDR).
	OptionPodCIDR = spec.RuntimeOptionPodCIDR
	// OptionImageSize is Options.ImageSize in bytes.
	OptionImageSize = "image-size"
)

// Plugin returns the hollow runtime's registration.
func Plugin() spec.RuntimePlugin {
	return spec.RuntimePlugin{
		Name:        Name,
		Description: "runs nothing: sandboxes and containers are records, for thousands of simulated nodes (like KWOK)",
		New:         newFromSpec,
	}
}

// newFromSpec is the spec.RuntimeFactory. It keeps no files: RootDir is
// ignored.
func newFromSpec(ctx context.Context, cfg spec.RuntimeConfig) (spec.Runtime, func() error, error) {
	if cfg.Endpoint != "" {
		return nil, nil, fmt.Errorf("hollow runtime: connects to no endpoint (got %q): %w", cfg.Endpoint, spec.ErrUnsupported)
	}
	opts, err := ParseOptions(cfg.Options)
	if err != nil {
		return nil, nil, err
	}
	return New(opts), func() error { return nil }, nil
}

// ParseOptions turns the plugin's key=value options into Options; an
// unknown key or a bad value is an error wrapping spec.ErrInvalid.
func ParseOptions(kv map[string]string) (Options, error) {
	var o Options
	for k, v := range kv {
		bad := func(want string) (Options, error) {
			return Options{}, fmt.Errorf("hollow runtime: option %s=%q: want %s: %w", k, v, want, spec.ErrInvalid)
		}
		switch k {
		case OptionExitCode:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 || n > 255 {
				return bad("0..255")
			}
			o.ExitCode = int32(n)
		case OptionPodCIDR:
			p, err := netip.ParsePrefix(v)
			if err != nil || p.Bits() >= p.Addr().BitLen()-1 {
				return bad("a CIDR with room for pods")
			}
			o.PodCIDR = p.Masked()
		case OptionImageSize:
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				return bad("a positive number of bytes")
			}
			o.ImageSize = n
		default:
			return Options{}, fmt.Errorf("hollow runtime: unknown option %q (known: %s, %s, %s): %w", k, OptionExitCode, OptionPodCIDR, OptionImageSize, spec.ErrInvalid)
		}
	}
	return o, nil
}
