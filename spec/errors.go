package spec

import (
	"errors"
	"fmt"
)

// Sentinel errors of the store contract. Implementations wrap them with the
// key and revisions involved (fmt.Errorf("key %q: %w", key, ErrNotFound));
// callers test them with errors.Is. An error that wraps none of them is an
// infrastructure failure (I/O, network, a lost quorum) and may succeed if
// retried.
var (
	// ErrNotFound: the key does not exist (Get, Update, Delete).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Create of a key that exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the key exists but its mod revision is not the expected one
	// (Update, Delete with a non-zero expected revision). Nothing was written.
	ErrConflict = errors.New("conflict: revision mismatch")
	// ErrCompacted: the requested revision is older than the store's
	// compacted revision, so that history is gone (List at a revision, Watch,
	// Compact to an older revision than the last compaction).
	ErrCompacted = errors.New("required revision has been compacted")
	// ErrFutureRevision: the requested revision is newer than the store's
	// current revision (List at a revision). Retrying later may succeed.
	ErrFutureRevision = errors.New("required revision is a future revision")
	// ErrInvalid: the request is malformed — an empty or relative key, a nil
	// value, a value over MaxValueSize (ErrValueTooLarge), a negative
	// revision or limit, a bad continuation. Nothing was written.
	ErrInvalid = errors.New("invalid argument")
	// ErrValueTooLarge: a write's value is larger than the store takes —
	// over MaxValueSize on a store that takes no more, or over its server's
	// request limit. It wraps ErrInvalid, so an error wrapping it is also
	// ErrInvalid; callers that tell the two apart (the API server answers
	// 413 for it, 400 for other ErrInvalid) test it first. Nothing was
	// written.
	ErrValueTooLarge = fmt.Errorf("value too large: %w", ErrInvalid)
	// ErrUnsupported: the request needs an optional capability the plugin does
	// not declare (for example a TTL on a store without CapTTL).
	ErrUnsupported = errors.New("unsupported by this plugin")
	// ErrClosed: the store was closed; every later call fails with it, and
	// open watches end with it.
	ErrClosed = errors.New("store is closed")
	// ErrWatcherTooSlow: a watcher did not drain its events fast enough and
	// was cut off so that it neither blocks writers nor grows memory without
	// bound. The watcher may resume from the last revision it received.
	ErrWatcherTooSlow = errors.New("watcher cut off: too slow to receive events")
)
