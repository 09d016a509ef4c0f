package spec

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxValueSize is the largest value every Store must accept: 1.5 MiB, etcd's
// default request limit, which is also the largest object the Kubernetes API
// server writes. A Store may accept more; a larger value is ErrValueTooLarge
// (which is also ErrInvalid) for a store that does not.
const MaxValueSize = 3 << 19 // 1.5 MiB

// MaxKeySize is the longest key every Store must accept, in bytes.
const MaxKeySize = 1024

// Store is a revisioned key-value store with watch: etcd's role in the
// Kubernetes architecture, at the level of etcd's KV API (the level kine works
// at too). The API server keeps every object in it under keys such as
// "/registry/pods/default/web-1" and uses its revision as resourceVersion.
//
// Revisions. A store has one global revision, a strictly increasing int64.
// Every successful write (Create, Update, Delete, and the expiry of a key with
// a TTL) commits at a revision greater than every revision before it, and
// returns it; the written key's ModRevision is that revision. Revisions need
// not be consecutive and need not start at 1. Reads (Get, List) report the
// revision they observed. One write changes one key, so it has one revision;
// only the expiry of several TTL keys at once may change several keys at the
// same revision (see Watch, "atomic").
//
// Keys are absolute slash-separated paths: non-empty, starting with "/", valid
// UTF-8, without NUL bytes, at most MaxKeySize bytes. Values are opaque bytes,
// non-nil (an empty slice is a valid value) and at most MaxValueSize bytes.
// A malformed key, value, revision or limit is ErrInvalid and writes nothing.
//
// Prefixes (List, Watch) name a directory: a trailing "/" is implied, so the
// prefix "/a" covers "/a/x" and "/a/x/y" but never "/ab" nor "/a" itself.
//
// Concurrency: every method is safe for concurrent use, and the store is
// linearizable: each call appears to take effect atomically at one instant
// between its invocation and its return, consistent with real time.
//
// Ownership: byte slices passed in are not retained after the call returns;
// byte slices returned belong to the caller.
//
// Cancellation: a call whose context is cancelled returns ctx.Err() (possibly
// wrapped) promptly; a write whose context was cancelled may or may not have
// been committed, exactly as with a network timeout.
//
// Close releases everything the store holds (goroutines, ports, files, temp
// dirs it created); afterwards every method returns ErrClosed and open
// watches end with an error event wrapping ErrClosed.
type Store interface {
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (KeyValue, error)

	// List returns the keys under prefix in ascending byte order, as of one
	// revision: opts.Revision, or the current revision when it is 0. The
	// result's Revision is the revision it was read at; to page through a
	// large list consistently, pass it back as opts.Revision together with
	// opts.After set to the last key received. A revision older than the
	// compacted revision is ErrCompacted; a revision newer than the current
	// one is ErrFutureRevision.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)

	// Create writes key only if it does not exist, and returns the revision of
	// the write. An existing key is ErrAlreadyExists. opts.TTL > 0 makes the
	// key expire (be deleted, with a Deleted event) after about that long; it
	// needs CapTTL, and is ErrUnsupported otherwise.
	Create(ctx context.Context, key string, value []byte, opts CreateOptions) (int64, error)

	// Update replaces the value of an existing key and returns the revision
	// of the write. With expectedModRevision > 0 it is a compare-and-swap: it
	// writes only if the key's ModRevision equals expectedModRevision, and
	// otherwise returns ErrConflict. With expectedModRevision == 0 it writes
	// unconditionally. A missing key is ErrNotFound (never ErrConflict).
	// The key keeps its CreateRevision; an Update removes any TTL.
	Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (int64, error)

	// Delete removes key and returns the key's last value (its KeyValue
	// before deletion) and the revision of the delete. With
	// expectedModRevision > 0 it deletes only if the key's ModRevision equals
	// it (ErrConflict otherwise); with 0 it deletes unconditionally. A
	// missing key is ErrNotFound.
	Delete(ctx context.Context, key string, expectedModRevision int64) (KeyValue, int64, error)

	// Watch streams every change to keys under prefix committed after
	// revision afterRevision — that is, from afterRevision+1 on — or, when
	// afterRevision is 0, every change committed after the call. It fails
	// with ErrCompacted when afterRevision+1 is older than the compacted
	// revision.
	//
	// Guarantees, which the conformance suite checks one by one:
	//   - ordered: events arrive in ascending revision order;
	//   - unique: no event is delivered twice;
	//   - atomic: all events of one revision arrive together, in one batch;
	//   - resumable: a watch from any uncompacted revision replays exactly
	//     the events after it;
	//   - reliable: no event is skipped; a watcher that cannot keep up is cut
	//     off with a final error event wrapping ErrWatcherTooSlow, never
	//     silently skipped ahead.
	//
	// The watch ends when ctx is cancelled or Stop is called (its channel is
	// closed, without an error event), or with one final error event
	// (ErrCompacted, ErrWatcherTooSlow, ErrClosed, or an infrastructure
	// error) after which the channel is closed.
	Watch(ctx context.Context, prefix string, afterRevision int64) (Watcher, error)

	// Compact discards the history of revisions older than revision: List at
	// an older revision and Watch from an older revision fail with
	// ErrCompacted afterwards. The current state is never lost. Compacting
	// to a revision at or below the last compacted one is ErrCompacted;
	// beyond the current revision, ErrFutureRevision.
	Compact(ctx context.Context, revision int64) error

	// Revision returns the store's current revision: that of the last
	// committed write (or the revision a fresh store starts at).
	Revision(ctx context.Context) (int64, error)

	// Close releases the store. It is idempotent.
	Close() error
}

// KeyValue is one key's state at one revision.
type KeyValue struct {
	// Key is the full key.
	Key string
	// Value is the stored bytes.
	Value []byte
	// CreateRevision is the revision at which the key was created.
	CreateRevision int64
	// ModRevision is the revision of the key's last write.
	ModRevision int64
}

// ListOptions narrows a List.
type ListOptions struct {
	// Revision to read at; 0 means the current revision.
	Revision int64
	// Limit is the maximum number of keys returned; 0 means no limit.
	Limit int64
	// After, when not empty, returns only keys strictly greater than it
	// (byte order): the continuation of a paged list.
	After string
}

// ListResult is one page of a List.
type ListResult struct {
	// Items are the keys, in ascending byte order.
	Items []KeyValue
	// Revision is the revision the list was read at.
	Revision int64
	// More is true when Limit cut the list short: more keys follow the last
	// one in Items at the same Revision.
	More bool
}

// CreateOptions qualify a Create.
type CreateOptions struct {
	// TTL, when > 0, makes the key expire after about that long (seconds
	// granularity is allowed). Needs CapTTL.
	TTL time.Duration
}

// EventType says what a watch event records.
type EventType int

const (
	// EventCreated: a key was created. Event.KV is its new state.
	EventCreated EventType = iota + 1
	// EventUpdated: a key was changed. Event.KV is its new state and
	// Event.PrevKV its state before.
	EventUpdated
	// EventDeleted: a key was deleted (or expired). Event.KV.Key is the key
	// and Event.KV.ModRevision the revision of the delete; Event.PrevKV is
	// the key's last state.
	EventDeleted
	// EventError: the watch failed and ends; Event.Err says why.
	EventError
)

// String returns the event type's name.
func (t EventType) String() string {
	switch t {
	case EventCreated:
		return "CREATED"
	case EventUpdated:
		return "UPDATED"
	case EventDeleted:
		return "DELETED"
	case EventError:
		return "ERROR"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change seen by a watch.
type Event struct {
	// Type is what happened.
	Type EventType
	// KV is the key after the change (see EventType for deletes).
	KV KeyValue
	// PrevKV is the key before the change; set for EventUpdated and
	// EventDeleted, nil for EventCreated.
	PrevKV *KeyValue
	// Err is set only for EventError.
	Err error
}

// Revision returns the revision at which the event's change was committed.
func (e Event) Revision() int64 { return e.KV.ModRevision }

// Watcher is an open watch.
type Watcher interface {
	// Events delivers batches of events. Each batch holds whole revisions
	// (see Store.Watch, "atomic"); a batch holding an EventError is the last.
	// The channel is closed when the watch ends.
	Events() <-chan []Event
	// Stop ends the watch and releases its resources; the channel is closed
	// soon after. Stop is idempotent and safe to call concurrently.
	Stop()
}

// ValidateKey returns nil if key is a well-formed Store key, and an error
// wrapping ErrInvalid otherwise.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key: %w", ErrInvalid)
	case key[0] != '/':
		return fmt.Errorf("key %q does not start with \"/\": %w", key, ErrInvalid)
	case len(key) > MaxKeySize:
		return fmt.Errorf("key of %d bytes exceeds %d: %w", len(key), MaxKeySize, ErrInvalid)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not valid UTF-8: %w", key, ErrInvalid)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("key %q contains a NUL byte: %w", key, ErrInvalid)
	}
	return nil
}

// ValidateValue returns nil if value is a storable value, and an error
// wrapping ErrInvalid otherwise (ErrValueTooLarge for a value over
// MaxValueSize).
func ValidateValue(value []byte) error {
	if value == nil {
		return fmt.Errorf("nil value: %w", ErrInvalid)
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("value of %d bytes exceeds %d: %w", len(value), MaxValueSize, ErrValueTooLarge)
	}
	return nil
}

// ValidateRevision returns an error wrapping ErrInvalid for a negative
// revision; name says which argument it is.
func ValidateRevision(name string, rev int64) error {
	if rev < 0 {
		return fmt.Errorf("%s %d is negative: %w", name, rev, ErrInvalid)
	}
	return nil
}

// DirPrefix returns the directory form of a List or Watch prefix: prefix with
// a trailing "/", after validating it like a key.
func DirPrefix(prefix string) (string, error) {
	if err := ValidateKey(prefix); err != nil {
		return "", err
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix, nil
}

// ValidateListOptions returns an error wrapping ErrInvalid for a negative
// revision or limit.
func ValidateListOptions(opts ListOptions) error {
	if err := ValidateRevision("revision", opts.Revision); err != nil {
		return err
	}
	if opts.Limit < 0 {
		return fmt.Errorf("limit %d is negative: %w", opts.Limit, ErrInvalid)
	}
	return nil
}

// ValidateWrite checks the arguments of an Update (and of a Create, with
// expectedModRevision 0): the key, the value and the expected revision. It
// returns an error wrapping ErrInvalid for the first malformed one.
func ValidateWrite(key string, value []byte, expectedModRevision int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ValidateValue(value); err != nil {
		return err
	}
	return ValidateRevision("expected mod revision", expectedModRevision)
}
