package etcd

import (
	"context"

	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "etcd"

// Plugin returns the etcd store plugin for a spec.Registry. Its factory opens
// a Store with OptionsFromConfig(cfg): an embedded server with its data in
// cfg.DataDir, or a client of cfg.Endpoints. cfg.Options may hold
// OptionDialTimeout ("dial-timeout"), OptionWatchBuffer ("watch-buffer"),
// OptionUnsafeNoFsync ("unsafe-no-fsync") and OptionLogLevel ("log-level");
// any other key is ErrInvalid. It claims spec.CapStoreDurable (etcd's WAL,
// fsynced unless unsafe-no-fsync is set) and spec.CapStoreTTL (leases).
func Plugin() spec.StorePlugin {
	return spec.StorePlugin{
		Name:         Name,
		Description:  "etcd v3: an embedded etcd server, or an external etcd cluster given by endpoints",
		Capabilities: spec.Capabilities{spec.CapStoreDurable, spec.CapStoreTTL},
		New: func(ctx context.Context, cfg spec.StoreConfig) (spec.Store, error) {
			o, err := OptionsFromConfig(cfg)
			if err != nil {
				return nil, err
			}
			s, err := New(ctx, o)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}
