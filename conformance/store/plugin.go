package store

import (
	"context"

	"github.com/kubelab/kubelab/spec"
)

// PluginTarget returns the Target of a registered store plugin: it claims
// the plugin's capabilities and opens stores with the plugin's factory, with
// cfg (endpoints, options, logger) and each spec's data directory as
// cfg.DataDir.
func PluginTarget(p spec.StorePlugin, cfg spec.StoreConfig) Target {
	return Target{
		Name:         p.Name,
		Capabilities: p.Capabilities,
		Open: func(ctx context.Context, dataDir string) (spec.Store, error) {
			c := cfg
			c.DataDir = dataDir
			return p.New(ctx, c)
		},
	}
}
