// Package memory is an in-memory implementation of spec.Store: a revisioned
// key-value store with MVCC history, watch and TTL, for unit tests, the
// in-process cluster and scheduling research, where etcd's durability is not
// needed and its latency is in the way.
//
// Model. One mutex guards the whole state, so every operation is atomic and
// linearizable. Each key keeps its versions (and a tombstone when deleted) in
// revision order; a List at revision r reads, for every key under the prefix,
// its last version at or before r. An event log records every change since
// the compacted revision; it feeds watches that start in the past and drives
// compaction, which trims exactly the keys whose history it drops. History
// is bounded by Options.HistoryRevisions (automatic compaction after each
// write) and by explicit Compact calls.
//
// Watch. A watch that starts in the past replays the log in chunks on its
// own goroutine, then subscribes to live events in the same critical section
// as its last replay step, so no event is lost or delivered twice. Live
// events are pushed by writers into a bounded per-watch queue; a watch whose
// queue would exceed Options.WatchBuffer is cut off with ErrWatcherTooSlow,
// so writers never block and memory stays bounded.
//
// TTL. Keys created with a TTL sit in a min-heap of deadlines served by one
// timer goroutine (started on first use, stopped by Close); the keys that
// expire together are deleted at one revision.
//
// The store is not durable: its data is gone when it is closed or the process
// ends. Plugin declares spec.CapStoreTTL only.
package memory
