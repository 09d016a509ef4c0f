// Package etcd is kubelab's etcd store plugin: spec.Store over etcd's v3 KV
// API, either on an etcd server it embeds (go.etcd.io/etcd/server/v3/embed,
// the default) or on an external etcd cluster reached through its client
// URLs.
//
// Every operation is one etcd request: Create, Update and Delete are
// transactions comparing the key's create or mod revision, reads are
// linearizable, and the store's revision is etcd's. Watches are etcd watches
// (WithRequireLeader, WithPrevKV); TTLs are etcd leases.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubelab/kubelab/spec"
)

// maxLeaseTTL is etcd's largest lease TTL, in seconds.
const maxLeaseTTL = 9_000_000_000

// revokeTimeout bounds the revocation of the lease of a Create that failed.
const revokeTimeout = 5 * time.Second

// Store is a spec.Store backed by etcd. It is safe for concurrent use. Create
// one with New or through Plugin.
type Store struct {
	client      *clientv3.Client
	server      *embedded // nil with external endpoints
	endpoints   []string
	watchBuffer int

	closed    atomic.Bool // set by Close before it releases anything
	muted     atomic.Bool // silences etcd's logs while Close stops it
	closeOnce sync.Once
	closeErr  error // the result of Close, set inside closeOnce

	mu       sync.Mutex            // guards watchers
	watchers map[*watcher]struct{} // open watches, ended by Close

	watchWG sync.WaitGroup // one per watch goroutine
}

var _ spec.Store = (*Store)(nil)

// New opens a Store. With o.Endpoints it connects to that etcd cluster;
// otherwise it starts an embedded single-member etcd server on free loopback
// ports with its data in o.DataDir, and returns once the server serves. ctx
// bounds the start only. Malformed Options are an error wrapping
// spec.ErrInvalid; on any error nothing New started is left running.
func New(ctx context.Context, o Options) (*Store, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Store{
		watchBuffer: o.WatchBuffer,
		watchers:    map[*watcher]struct{}{},
		endpoints:   slices.Clone(o.Endpoints),
	}
	lg := newZapLogger(o.Logger, zapLevel(o.LogLevel), &s.muted)
	if len(o.Endpoints) == 0 {
		srv, err := startEmbedded(ctx, o, lg)
		if err != nil {
			return nil, err
		}
		s.server = srv
		s.endpoints = []string{srv.clientURL}
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   s.endpoints,
		DialTimeout: o.DialTimeout,
		// Detect a dead member behind an open watch stream, so that the
		// client moves to a live one. (etcd refuses pings more frequent
		// than every 5s.)
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		MaxCallSendMsgSize:   maxRequestBytes,
		MaxCallRecvMsgSize:   math.MaxInt32, // a List may be large
		Logger:               lg,
	})
	if err == nil {
		// clientv3.New does not block on the connection; make New fail
		// early, inside ctx, when nothing answers.
		err = ping(ctx, client, o.DialTimeout)
		if err != nil {
			client.Close()
		}
	}
	if err != nil {
		if s.server != nil {
			s.muted.Store(true)
			s.server.close()
		}
		return nil, fmt.Errorf("etcd store: connecting to %q: %w", s.endpoints, err)
	}
	s.client = client
	return s, nil
}

// ping waits until the cluster answers one linearizable read, for at most
// timeout.
func ping(ctx context.Context, client *clientv3.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := client.Get(ctx, "/", clientv3.WithCountOnly())
	return err
}

// Client returns the etcd client the store uses, for code that needs etcd
// itself (benchmarks comparing the plugin to raw clientv3, tools). It is owned
// by the store: do not close it; it stops working when the store is closed.
func (s *Store) Client() *clientv3.Client { return s.client }

// Endpoints returns the client URLs the store talks to: those of the
// embedded server, or the external ones it was opened with. The caller owns
// the returned slice.
func (s *Store) Endpoints() []string { return slices.Clone(s.endpoints) }

// Embedded reports whether the store runs its own etcd server.
func (s *Store) Embedded() bool { return s.server != nil }

// check is the common prologue of every call: ErrClosed, then ctx.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("etcd store: %w", spec.ErrClosed)
	}
	return ctx.Err()
}

// wrapErr turns an error of the etcd client into the store's: etcd's
// compaction, future-revision and request-too-large errors become the spec
// sentinels (ErrCompacted, ErrFutureRevision, ErrValueTooLarge), a failure
// caused by Close becomes ErrClosed, and anything else (a lost quorum, a
// network error, the ctx's error) is wrapped as is.
func (s *Store) wrapErr(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("etcd store: %s: %w", what, ctx.Err())
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("etcd store: %s: %w", what, spec.ErrCompacted)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("etcd store: %s: %w", what, spec.ErrFutureRevision)
	case s.closed.Load():
		return fmt.Errorf("etcd store: %s: %w (%v)", what, spec.ErrClosed, err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("etcd store: %s: %w: %w (the server's --max-request-bytes must be at least %d)", what, spec.ErrValueTooLarge, err, MinServerRequestBytes)
	}
	return fmt.Errorf("etcd store: %s: %w", what, err)
}

// Get implements spec.Store.
func (s *Store) Get(ctx context.Context, key string) (spec.KeyValue, error) {
	if err := s.check(ctx); err != nil {
		return spec.KeyValue{}, err
	}
	if err := spec.ValidateKey(key); err != nil {
		return spec.KeyValue{}, err
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return spec.KeyValue{}, s.wrapErr(ctx, fmt.Sprintf("get %q", key), err)
	}
	if len(resp.Kvs) == 0 {
		return spec.KeyValue{}, fmt.Errorf("key %q: %w", key, spec.ErrNotFound)
	}
	return keyValue(resp.Kvs[0]), nil
}

// List implements spec.Store. It is one etcd range request over the
// directory prefix, starting after opts.After, at opts.Revision, with
// opts.Limit.
func (s *Store) List(ctx context.Context, prefix string, opts spec.ListOptions) (spec.ListResult, error) {
	if err := s.check(ctx); err != nil {
		return spec.ListResult{}, err
	}
	dir, err := spec.DirPrefix(prefix)
	if err != nil {
		return spec.ListResult{}, err
	}
	if err := spec.ValidateListOptions(opts); err != nil {
		return spec.ListResult{}, err
	}
	start, end := dir, clientv3.GetPrefixRangeEnd(dir)
	if opts.After != "" {
		if err := spec.ValidateKey(opts.After); err != nil {
			return spec.ListResult{}, fmt.Errorf("continuation: %w", err)
		}
		if opts.After >= start {
			// The smallest key strictly greater than After.
			start = opts.After + "\x00"
		}
	}
	res := spec.ListResult{Revision: opts.Revision}
	if start >= end {
		// Nothing can follow After under the prefix. Still answer at a
		// revision, checked like any other.
		rev, err := s.listRevision(ctx, opts.Revision)
		if err != nil {
			return spec.ListResult{}, s.wrapErr(ctx, fmt.Sprintf("list %q at revision %d", dir, opts.Revision), err)
		}
		res.Revision = rev
		return res, nil
	}
	ops := []clientv3.OpOption{clientv3.WithRange(end)}
	if opts.Revision > 0 {
		ops = append(ops, clientv3.WithRev(opts.Revision))
	}
	if opts.Limit > 0 {
		ops = append(ops, clientv3.WithLimit(opts.Limit))
	}
	resp, err := s.client.Get(ctx, start, ops...)
	if err != nil {
		return spec.ListResult{}, s.wrapErr(ctx, fmt.Sprintf("list %q at revision %d", dir, opts.Revision), err)
	}
	if res.Revision == 0 {
		// Without WithRev the range is read at the header's revision. With
		// it, the header holds the current revision instead, so keep the
		// one asked for.
		res.Revision = resp.Header.Revision
	}
	res.More = resp.More
	res.Items = keyValues(resp.Kvs)
	return res, nil
}

// listRevision validates rev as a List revision without reading keys: the
// current revision for 0, rev itself if it is neither compacted nor in the
// future.
func (s *Store) listRevision(ctx context.Context, rev int64) (int64, error) {
	ops := []clientv3.OpOption{clientv3.WithCountOnly()}
	if rev > 0 {
		ops = append(ops, clientv3.WithRev(rev))
	}
	resp, err := s.client.Get(ctx, "/", ops...)
	if err != nil {
		return 0, err
	}
	if rev > 0 {
		return rev, nil
	}
	return resp.Header.Revision, nil
}

// Create implements spec.Store: a transaction that puts the key only if its
// create revision is 0 (it does not exist). A TTL attaches a new lease of
// that many seconds (rounded up; etcd raises very short TTLs to its minimum
// lease TTL, about two seconds with default timing).
func (s *Store) Create(ctx context.Context, key string, value []byte, opts spec.CreateOptions) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := spec.ValidateKey(key); err != nil {
		return 0, err
	}
	if err := spec.ValidateValue(value); err != nil {
		return 0, err
	}
	if opts.TTL < 0 {
		return 0, fmt.Errorf("negative TTL %v: %w", opts.TTL, spec.ErrInvalid)
	}
	var putOpts []clientv3.OpOption
	var lease clientv3.LeaseID
	if opts.TTL > 0 {
		secs := int64(opts.TTL / time.Second)
		if opts.TTL%time.Second != 0 {
			secs++
		}
		if secs > maxLeaseTTL {
			return 0, fmt.Errorf("TTL %v exceeds etcd's %ds: %w", opts.TTL, maxLeaseTTL, spec.ErrInvalid)
		}
		resp, err := s.client.Grant(ctx, secs)
		if err != nil {
			return 0, s.wrapErr(ctx, fmt.Sprintf("create %q: lease of %ds", key, secs), err)
		}
		lease = resp.ID
		putOpts = append(putOpts, clientv3.WithLease(lease))
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), putOpts...)).
		Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("key %q: %w", key, spec.ErrAlreadyExists)
	} else if err != nil {
		err = s.wrapErr(ctx, fmt.Sprintf("create %q", key), err)
	}
	if err != nil {
		if lease != 0 {
			// Best effort: an orphaned lease holds no key and expires.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
			s.client.Revoke(rctx, lease)
			cancel()
		}
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Update implements spec.Store: a transaction that puts the key only if its
// mod revision is expectedModRevision (or, for 0, if it exists), and
// otherwise reads it to tell ErrNotFound from ErrConflict. The put carries
// no lease, which detaches the key from any TTL.
func (s *Store) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := spec.ValidateWrite(key, value, expectedModRevision); err != nil {
		return 0, err
	}
	cmp, orElse := writeGuard(key, expectedModRevision)
	resp, err := s.client.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(value))).Else(orElse...).Commit()
	if err != nil {
		return 0, s.wrapErr(ctx, fmt.Sprintf("update %q", key), err)
	}
	if !resp.Succeeded {
		return 0, mismatch(key, expectedModRevision, resp)
	}
	return resp.Header.Revision, nil
}

// Delete implements spec.Store, like Update with a delete that returns the
// key's last state.
func (s *Store) Delete(ctx context.Context, key string, expectedModRevision int64) (spec.KeyValue, int64, error) {
	if err := s.check(ctx); err != nil {
		return spec.KeyValue{}, 0, err
	}
	if err := spec.ValidateKey(key); err != nil {
		return spec.KeyValue{}, 0, err
	}
	if err := spec.ValidateRevision("expected mod revision", expectedModRevision); err != nil {
		return spec.KeyValue{}, 0, err
	}
	cmp, orElse := writeGuard(key, expectedModRevision)
	resp, err := s.client.Txn(ctx).If(cmp).Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).Else(orElse...).Commit()
	if err != nil {
		return spec.KeyValue{}, 0, s.wrapErr(ctx, fmt.Sprintf("delete %q", key), err)
	}
	if !resp.Succeeded {
		return spec.KeyValue{}, 0, mismatch(key, expectedModRevision, resp)
	}
	del := resp.Responses[0].GetResponseDeleteRange()
	if del == nil || len(del.PrevKvs) == 0 {
		// The compare proved the key exists and the delete ran in the same
		// transaction, so etcd always returns it.
		return spec.KeyValue{}, 0, fmt.Errorf("etcd store: delete %q: no previous value in etcd's answer", key)
	}
	return keyValue(del.PrevKvs[0]), resp.Header.Revision, nil
}

// writeGuard is the condition of an Update or Delete: the key's mod
// revision is expected, or, for 0, the key exists. With an expected
// revision, the transaction's Else branch reads the key so that mismatch can
// tell a conflict from a missing key.
func writeGuard(key string, expected int64) (clientv3.Cmp, []clientv3.Op) {
	if expected > 0 {
		return clientv3.Compare(clientv3.ModRevision(key), "=", expected),
			[]clientv3.Op{clientv3.OpGet(key, clientv3.WithKeysOnly())}
	}
	return clientv3.Compare(clientv3.CreateRevision(key), ">", 0), nil
}

// mismatch explains a failed compare of Update or Delete: with an expected
// revision, the Else branch read the key.
func mismatch(key string, expected int64, resp *clientv3.TxnResponse) error {
	if expected > 0 && len(resp.Responses) == 1 {
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) == 1 {
			return fmt.Errorf("key %q has mod revision %d, not %d: %w", key, r.Kvs[0].ModRevision, expected, spec.ErrConflict)
		}
	}
	return fmt.Errorf("key %q: %w", key, spec.ErrNotFound)
}

// Compact implements spec.Store with etcd's compaction. Revision 0 is never
// a valid target (nothing precedes it), so it is ErrCompacted, as for any
// revision at or below the last compaction.
func (s *Store) Compact(ctx context.Context, revision int64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := spec.ValidateRevision("revision", revision); err != nil {
		return err
	}
	if revision == 0 {
		return fmt.Errorf("compact to revision 0: %w", spec.ErrCompacted)
	}
	if _, err := s.client.Compact(ctx, revision); err != nil {
		return s.wrapErr(ctx, fmt.Sprintf("compact to revision %d", revision), err)
	}
	return nil
}

// Revision implements spec.Store: the header revision of a linearizable
// read.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	rev, err := s.listRevision(ctx, 0)
	if err != nil {
		return 0, s.wrapErr(ctx, "revision", err)
	}
	return rev, nil
}

// Close implements spec.Store: it ends open watches with an error event
// wrapping spec.ErrClosed, closes the client and, in embedded mode, stops the
// server and removes the temporary data dir New made, if any. It returns
// once everything is released. It is idempotent; later calls return the
// first call's result, after it has finished.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	s.mu.Lock()
	s.closed.Store(true)
	for w := range s.watchers {
		w.end()
	}
	s.mu.Unlock()
	s.watchWG.Wait()

	s.muted.Store(true)
	err := s.client.Close()
	if errors.Is(err, context.Canceled) {
		err = nil // the client reports its own cancellation
	}
	if s.server != nil {
		err = errors.Join(err, s.server.close())
	}
	return err
}

// keyValue converts an etcd key-value. The value slice comes from the
// response's own decoding buffer, so handing it over does not alias anything
// the client keeps.
func keyValue(kv *mvccpb.KeyValue) spec.KeyValue {
	return spec.KeyValue{
		Key:            string(kv.Key),
		Value:          nonNil(kv.Value),
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
	}
}

// keyValues converts the key-values of a range response. The keys are
// copied into one string that the returned keys share, so a large List costs
// one allocation for its keys rather than one per key.
func keyValues(kvs []*mvccpb.KeyValue) []spec.KeyValue {
	size := 0
	for _, kv := range kvs {
		size += len(kv.Key)
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, kv := range kvs {
		sb.Write(kv.Key)
	}
	keys := sb.String()
	items := make([]spec.KeyValue, len(kvs))
	off := 0
	for i, kv := range kvs {
		items[i] = spec.KeyValue{
			Key:            keys[off : off+len(kv.Key)],
			Value:          nonNil(kv.Value),
			CreateRevision: kv.CreateRevision,
			ModRevision:    kv.ModRevision,
		}
		off += len(kv.Key)
	}
	return items
}

// nonNil turns the nil that protobuf decodes an empty value into back into
// an empty slice: values are never nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
