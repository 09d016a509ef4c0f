// Package myruntime is the example runtime plugin of README.md's "Writing
// and testing your own plugin": kubelab's process runtime registered under
// a name of its own, with its network and image store fixed — the shape of
// a runtime that wraps another. A runtime of your own implements
// spec.Runtime (CRI's RuntimeService and ImageManagerService); one that
// already serves CRI on a socket needs no Go at all
// (`kubelab conform --suite runtime --cri-endpoint unix:///...`).
package myruntime

import (
	"context"
	"fmt"

	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "myruntime"

// Plugin returns the registration. It accepts only the standard option
// spec.RuntimeOptionPodCIDR, which every runtime must accept (the
// conformance runner gives each run a free range through it), and hands
// the suite's test images to the process runtime's image store.
func Plugin() spec.RuntimePlugin {
	inner := process.Plugin()
	return spec.RuntimePlugin{
		Name:         Name,
		Description:  "example: kubelab's process runtime with a bridge network",
		Capabilities: inner.Capabilities,
		ImportImages: inner.ImportImages,
		New: func(ctx context.Context, cfg spec.RuntimeConfig) (spec.Runtime, func() error, error) {
			opts := map[string]string{process.OptionNetwork: "bridge", process.OptionInstance: "myrt"}
			for k, v := range cfg.Options {
				if k != spec.RuntimeOptionPodCIDR {
					return nil, nil, fmt.Errorf("myruntime: unknown option %q: %w", k, spec.ErrInvalid)
				}
				opts[k] = v
			}
			cfg.Options = opts
			return inner.New(ctx, cfg)
		},
	}
}
