package brokenstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/kubelab/kubelab/spec"
)

// dataDirs keeps, for LosesLastWriteOnReopen, the base store of every data
// directory opened in this process, so that it outlives Close and is found
// again by the next open: durability within the process, whatever the base.
// These base stores are never closed; the fake is for tests.
var dataDirs = struct {
	mu     sync.Mutex
	stores map[string]*sharedBase
}{stores: map[string]*sharedBase{}}

// sharedBase is the base store behind one data directory.
type sharedBase struct {
	store spec.Store
	open  bool // a losesLastWrite holds it
}

func openLosesLastWrite(base spec.StorePlugin) spec.StoreFactory {
	return func(ctx context.Context, cfg spec.StoreConfig) (spec.Store, error) {
		if cfg.DataDir == "" {
			return nil, fmt.Errorf("%s needs a data directory: %w", LosesLastWriteOnReopen, spec.ErrInvalid)
		}
		dataDirs.mu.Lock()
		defer dataDirs.mu.Unlock()
		sb := dataDirs.stores[cfg.DataDir]
		if sb == nil {
			s, err := base.New(ctx, cfg)
			if err != nil {
				return nil, err
			}
			sb = &sharedBase{store: s}
			dataDirs.stores[cfg.DataDir] = sb
		}
		if sb.open {
			return nil, fmt.Errorf("%s: data directory %q is already open: %w", LosesLastWriteOnReopen, cfg.DataDir, spec.ErrInvalid)
		}
		sb.open = true
		return &losesLastWrite{base: sb, watches: map[*relay]struct{}{}}, nil
	}
}

// losesLastWrite is one opening of a shared base store. Close undoes the
// last write instead of keeping it.
type losesLastWrite struct {
	base *sharedBase

	mu      sync.Mutex // guards the fields below
	closed  bool
	undo    func(context.Context) // reverts the last successful write
	watches map[*relay]struct{}   // open watches, ended by Close
}

var errClosed = fmt.Errorf("%s: %w", LosesLastWriteOnReopen, spec.ErrClosed)

// store returns the base store, or ErrClosed.
func (s *losesLastWrite) store() (spec.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	return s.base.store, nil
}

func (s *losesLastWrite) remember(undo func(context.Context)) {
	s.mu.Lock()
	s.undo = undo
	s.mu.Unlock()
}

func (s *losesLastWrite) Get(ctx context.Context, key string) (spec.KeyValue, error) {
	b, err := s.store()
	if err != nil {
		return spec.KeyValue{}, err
	}
	return b.Get(ctx, key)
}

func (s *losesLastWrite) List(ctx context.Context, prefix string, opts spec.ListOptions) (spec.ListResult, error) {
	b, err := s.store()
	if err != nil {
		return spec.ListResult{}, err
	}
	return b.List(ctx, prefix, opts)
}

func (s *losesLastWrite) Create(ctx context.Context, key string, value []byte, opts spec.CreateOptions) (int64, error) {
	b, err := s.store()
	if err != nil {
		return 0, err
	}
	rev, err := b.Create(ctx, key, value, opts)
	if err == nil {
		s.remember(func(ctx context.Context) { _, _, _ = b.Delete(ctx, key, 0) })
	}
	return rev, err
}

func (s *losesLastWrite) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	b, err := s.store()
	if err != nil {
		return 0, err
	}
	prev, getErr := b.Get(ctx, key)
	rev, err := b.Update(ctx, key, value, expectedModRevision)
	if err == nil && getErr == nil {
		s.remember(func(ctx context.Context) { _, _ = b.Update(ctx, key, prev.Value, 0) })
	}
	return rev, err
}

func (s *losesLastWrite) Delete(ctx context.Context, key string, expectedModRevision int64) (spec.KeyValue, int64, error) {
	b, err := s.store()
	if err != nil {
		return spec.KeyValue{}, 0, err
	}
	prev, rev, err := b.Delete(ctx, key, expectedModRevision)
	if err == nil {
		s.remember(func(ctx context.Context) { _, _ = b.Create(ctx, key, prev.Value, spec.CreateOptions{}) })
	}
	return prev, rev, err
}

func (s *losesLastWrite) Watch(ctx context.Context, prefix string, afterRevision int64) (spec.Watcher, error) {
	b, err := s.store()
	if err != nil {
		return nil, err
	}
	w, err := b.Watch(ctx, prefix, afterRevision)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		w.Stop()
		return nil, errClosed
	}
	r := forward(w, same)
	s.watches[r] = struct{}{}
	go func() {
		<-r.done
		s.mu.Lock()
		delete(s.watches, r)
		s.mu.Unlock()
	}()
	return r, nil
}

func (s *losesLastWrite) Compact(ctx context.Context, revision int64) error {
	b, err := s.store()
	if err != nil {
		return err
	}
	return b.Compact(ctx, revision)
}

func (s *losesLastWrite) Revision(ctx context.Context) (int64, error) {
	b, err := s.store()
	if err != nil {
		return 0, err
	}
	return b.Revision(ctx)
}

// Close ends the open watches with ErrClosed, and undoes the last write.
func (s *losesLastWrite) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	undo := s.undo
	var watches []*relay
	for r := range s.watches {
		watches = append(watches, r)
	}
	s.mu.Unlock()
	for _, r := range watches {
		r.fail(errClosed)
	}
	if undo != nil {
		undo(context.Background()) // BUG: the last write was never made durable
	}
	dataDirs.mu.Lock()
	s.base.open = false
	dataDirs.mu.Unlock()
	return nil
}
