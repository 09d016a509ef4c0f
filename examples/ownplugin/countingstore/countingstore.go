// Package countingstore is the example store plugin of README.md's "Writing
// and testing your own plugin": kubelab's memory store with a count of the
// writes it accepted, the shape of a store that wraps another (a cache, a
// metrics or tracing layer, a proxy in front of a remote server).
//
// The store contract is spec.Store (spec/store.go): every rule a plugin
// must keep — revisions, CAS, watch order, sentinel errors — is in its doc
// comments, and `kubelab conform --suite store --store counting` checks it.
package countingstore

import (
	"context"
	"sync/atomic"

	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "counting"

// Plugin returns the registration: the memory store's capabilities, since
// every operation is the memory store's.
func Plugin() spec.StorePlugin {
	inner := memory.Plugin()
	return spec.StorePlugin{
		Name:         Name,
		Description:  "example: the memory store, counting accepted writes",
		Capabilities: inner.Capabilities,
		New: func(ctx context.Context, cfg spec.StoreConfig) (spec.Store, error) {
			s, err := inner.New(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &Store{Store: s}, nil
		},
	}
}

// Store is a spec.Store that counts the writes its inner store accepted.
// Reads, watches, Compact and Close are the inner store's (embedded).
type Store struct {
	spec.Store
	writes atomic.Int64
}

var _ spec.Store = (*Store)(nil)

// Writes is how many Create, Update and Delete calls succeeded.
func (s *Store) Writes() int64 { return s.writes.Load() }

func (s *Store) count(err error) {
	if err == nil {
		s.writes.Add(1)
	}
}

// Create implements spec.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte, opts spec.CreateOptions) (int64, error) {
	rev, err := s.Store.Create(ctx, key, value, opts)
	s.count(err)
	return rev, err
}

// Update implements spec.Store.
func (s *Store) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	rev, err := s.Store.Update(ctx, key, value, expectedModRevision)
	s.count(err)
	return rev, err
}

// Delete implements spec.Store.
func (s *Store) Delete(ctx context.Context, key string, expectedModRevision int64) (spec.KeyValue, int64, error) {
	kv, rev, err := s.Store.Delete(ctx, key, expectedModRevision)
	s.count(err)
	return kv, rev, err
}
