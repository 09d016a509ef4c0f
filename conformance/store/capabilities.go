package store

import "github.com/kubelab/kubelab/spec"

// Capability labels of the store suite. Every spec carries exactly one. All
// but spec.CapStoreDurable and spec.CapStoreTTL are mandatory: every store is
// tested for them.
const (
	// CapCRUD: Create, Get, Update and Delete round-trip keys with their
	// revisions and report ErrAlreadyExists and ErrNotFound.
	CapCRUD spec.Capability = "store:crud"
	// CapCAS: Update and Delete with an expected mod revision are
	// compare-and-swap operations.
	CapCAS spec.Capability = "store:cas"
	// CapList: List reads at one consistent revision, pages consistently and
	// reads old revisions.
	CapList spec.Capability = "store:list"
	// CapPrefix: a prefix names a directory, for List and Watch.
	CapPrefix spec.Capability = "store:prefix"
	// CapLargeValues: values up to spec.MaxValueSize, and empty values,
	// round-trip byte for byte.
	CapLargeValues spec.Capability = "store:large-values"
	// CapBadInput: malformed requests are ErrInvalid, a closed store is
	// ErrClosed, and cancelled or stopped watches end.
	CapBadInput spec.Capability = "store:bad-input"
	// CapWatchOrdered: watch events arrive in ascending revision order.
	CapWatchOrdered spec.Capability = "store:watch-ordered"
	// CapWatchUnique: no watch event is delivered twice.
	CapWatchUnique spec.Capability = "store:watch-unique"
	// CapWatchAtomic: a watch batch holds whole revisions, and each event
	// carries the revision its write returned and the previous state.
	CapWatchAtomic spec.Capability = "store:watch-atomic"
	// CapWatchResumable: a watch from any uncompacted revision replays
	// exactly the events after it.
	CapWatchResumable spec.Capability = "store:watch-resumable"
	// CapWatchReliable: many watchers receive every event under concurrent
	// writers; a watcher is cut off, never silently skipped ahead.
	CapWatchReliable spec.Capability = "store:watch-reliable"
	// CapWatchCompacted: Compact discards history, and List and Watch from
	// a compacted revision are ErrCompacted.
	CapWatchCompacted spec.Capability = "store:watch-compacted"
	// CapConcurrency: concurrent compare-and-swap loses no update, and
	// racing creates and deletes succeed exactly once.
	CapConcurrency spec.Capability = "store:concurrency"
	// CapLinearizable: randomized concurrent histories are linearizable,
	// as checked by porcupine.
	CapLinearizable spec.Capability = "store:linearizable"
)

// Capabilities lists every capability label of the suite, mandatory and
// optional, in the order the reports show them.
func Capabilities() []spec.Capability {
	return []spec.Capability{
		CapCRUD, CapCAS, CapList, CapPrefix, CapLargeValues, CapBadInput,
		CapWatchOrdered, CapWatchUnique, CapWatchAtomic, CapWatchResumable,
		CapWatchReliable, CapWatchCompacted, CapConcurrency, CapLinearizable,
		spec.CapStoreDurable, spec.CapStoreTTL,
	}
}
