package memory

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/kubelab/kubelab/spec"
)

// Keys of spec.StoreConfig.Options understood by the plugin's factory.
const (
	// OptionHistoryRevisions sets Options.HistoryRevisions: an integer;
	// 0 or absent means DefaultHistoryRevisions, negative keeps all history.
	OptionHistoryRevisions = "history-revisions"
	// OptionWatchBuffer sets Options.WatchBuffer: an integer >= 0; 0 or
	// absent means DefaultWatchBuffer.
	OptionWatchBuffer = "watch-buffer"
)

// Plugin returns the memory store as a registry entry: name "memory",
// capability spec.CapStoreTTL (not spec.CapStoreDurable: data lives only as
// long as the Store). Its factory ignores cfg.DataDir, rejects
// cfg.Endpoints with spec.ErrUnsupported, and reads cfg.Options with the
// keys OptionHistoryRevisions and OptionWatchBuffer; any other key, or a
// malformed value, is spec.ErrInvalid.
func Plugin() spec.StorePlugin {
	return spec.StorePlugin{
		Name:         Name,
		Description:  "in-memory MVCC store with watch and TTL; fast, not durable",
		Capabilities: spec.Capabilities{spec.CapStoreTTL},
		New:          open,
	}
}

func open(ctx context.Context, cfg spec.StoreConfig) (spec.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(cfg.Endpoints) > 0 {
		return nil, fmt.Errorf("%s store cannot connect to endpoints %v: %w", Name, cfg.Endpoints, spec.ErrUnsupported)
	}
	opts, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	opts.Logger = cfg.Logger
	return New(opts), nil
}

// parseOptions turns StoreConfig.Options into Options.
func parseOptions(m map[string]string) (Options, error) {
	var opts Options
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the first bad key deterministically
	for _, k := range keys {
		v := m[k]
		switch k {
		case OptionHistoryRevisions:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Options{}, fmt.Errorf("%s store option %s=%q is not an integer: %w", Name, k, v, spec.ErrInvalid)
			}
			opts.HistoryRevisions = n
		case OptionWatchBuffer:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Options{}, fmt.Errorf("%s store option %s=%q is not a non-negative integer: %w", Name, k, v, spec.ErrInvalid)
			}
			opts.WatchBuffer = n
		default:
			return Options{}, fmt.Errorf("%s store: unknown option %q (known: %s, %s): %w",
				Name, k, OptionHistoryRevisions, OptionWatchBuffer, spec.ErrInvalid)
		}
	}
	return opts, nil
}
