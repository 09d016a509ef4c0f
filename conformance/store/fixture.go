package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/spec"
)

// Bounds on waiting, so that a broken store fails a spec rather than hanging it.
const (
	// openTimeout bounds opening and closing a store (an embedded etcd takes
	// a second or two to start).
	openTimeout = 2 * time.Minute
	// specTimeout bounds an ordinary spec.
	specTimeout = 2 * time.Minute
	// waitTimeout bounds waiting for an event or a state.
	waitTimeout = 30 * time.Second
	// stopTimeout bounds waiting for a watch channel to close.
	stopTimeout = 10 * time.Second
)

// fixture is the per-spec environment of one container of specs: a store
// opened for the spec in its own data directory, and a key prefix no other
// spec uses. Its fields are reset by the BeforeEach that newFixture declares;
// specs run one at a time in a Ginkgo process, so they need no lock.
type fixture struct {
	target Target
	// store is the store under test, opened for this spec.
	store spec.Store
	// dataDir is the spec's data directory, handed to Target.Open.
	dataDir string
	// prefix is the spec's key prefix, "/kubelab-conformance/<random>",
	// without a trailing slash.
	prefix string
}

// newFixture declares, in the current container, a BeforeEach that opens a
// store for each spec under a fresh prefix and closes it when the spec ends.
func newFixture(t Target) *fixture {
	f := &fixture{target: t}
	ginkgo.BeforeEach(func(ctx ginkgo.SpecContext) {
		f.setUp(ctx)
	}, ginkgo.NodeTimeout(openTimeout))
	return f
}

func (f *fixture) setUp(ctx context.Context) {
	ginkgo.GinkgoHelper()
	f.store = nil
	f.prefix = "/kubelab-conformance/" + randomHex(8)
	f.dataDir = specDataDir()
	f.store = f.open(ctx)
	ginkgo.DeferOnFailure(f.dump)
}

// dump adds the spec's keys to the report of a failed spec, the way the e2e
// framework dumps a failed spec's namespace.
func (f *fixture) dump() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type listed struct {
		res spec.ListResult
		err error
	}
	done := make(chan listed, 1)
	go func() {
		res, err := f.store.List(ctx, f.prefix, spec.ListOptions{})
		done <- listed{res, err}
	}()
	var res spec.ListResult
	var err error
	select {
	case l := <-done:
		res, err = l.res, l.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		ginkgo.AddReportEntry("keys under "+f.prefix, fmt.Sprintf("List failed: %v", err))
		return
	}
	dump := describeKVs(res.Items)
	if len(dump) > 100 {
		dump = append(dump[:100], fmt.Sprintf("... and %d more", len(dump)-100))
	}
	ginkgo.AddReportEntry("keys under "+f.prefix, fmt.Sprintf("at revision %d:\n%s", res.Revision, strings.Join(dump, "\n")))
}

// open opens a store on f.dataDir and closes it when the spec ends.
func (f *fixture) open(ctx context.Context) spec.Store {
	ginkgo.GinkgoHelper()
	s, err := f.target.Open(ctx, f.dataDir)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "opening store %q in %s", f.target.Name, f.dataDir)
	gomega.Expect(s).NotTo(gomega.BeNil(), "store %q opened as nil", f.target.Name)
	ginkgo.DeferCleanup(func(ctx ginkgo.SpecContext) {
		// Close is idempotent; specs that close the store themselves check
		// its result there.
		done := make(chan error, 1)
		go func() { done <- s.Close() }()
		select {
		case err := <-done:
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "closing store")
		case <-ctx.Done():
			ginkgo.Fail("Close did not return")
		}
	}, ginkgo.NodeTimeout(openTimeout))
	return s
}

// reopen closes the spec's store and opens it again on the same data
// directory.
func (f *fixture) reopen(ctx context.Context) {
	ginkgo.GinkgoHelper()
	gomega.Expect(f.store.Close()).To(gomega.Succeed(), "closing store before reopening it")
	f.store = f.open(ctx)
}

// specDataDir returns a fresh directory for the spec's data, on /dev/shm
// when there is one, removed when the spec ends.
func specDataDir() string {
	ginkgo.GinkgoHelper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "kubelab-store-"); err == nil {
			ginkgo.DeferCleanup(os.RemoveAll, dir)
			return dir
		}
	}
	return ginkgo.GinkgoT().TempDir()
}

// key returns the spec's key for the relative path parts, joined by "/".
func (f *fixture) key(parts ...string) string {
	return f.prefix + "/" + strings.Join(parts, "/")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// --- store calls that must succeed ---

func (f *fixture) revision(ctx context.Context) int64 {
	ginkgo.GinkgoHelper()
	rev, err := f.store.Revision(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Revision")
	return rev
}

func (f *fixture) create(ctx context.Context, key, value string) int64 {
	ginkgo.GinkgoHelper()
	rev, err := f.store.Create(ctx, key, []byte(value), spec.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Create(%q)", key)
	gomega.Expect(rev).To(gomega.BeNumerically(">", 0), "revision returned by Create(%q)", key)
	return rev
}

func (f *fixture) update(ctx context.Context, key, value string, expected int64) int64 {
	ginkgo.GinkgoHelper()
	rev, err := f.store.Update(ctx, key, []byte(value), expected)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Update(%q, expected %d)", key, expected)
	return rev
}

func (f *fixture) delete(ctx context.Context, key string, expected int64) (spec.KeyValue, int64) {
	ginkgo.GinkgoHelper()
	prev, rev, err := f.store.Delete(ctx, key, expected)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Delete(%q, expected %d)", key, expected)
	return prev, rev
}

func (f *fixture) get(ctx context.Context, key string) spec.KeyValue {
	ginkgo.GinkgoHelper()
	kv, err := f.store.Get(ctx, key)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Get(%q)", key)
	return kv
}

func (f *fixture) list(ctx context.Context, prefix string, opts spec.ListOptions) spec.ListResult {
	ginkgo.GinkgoHelper()
	res, err := f.store.List(ctx, prefix, opts)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "List(%q, %+v)", prefix, opts)
	return res
}

// expectMissing asserts that key does not exist.
func (f *fixture) expectMissing(ctx context.Context, key string) {
	ginkgo.GinkgoHelper()
	_, err := f.store.Get(ctx, key)
	gomega.Expect(err).To(gomega.MatchError(spec.ErrNotFound), "Get(%q) of a key that must not exist", key)
}

// expectValue asserts key's value and revisions.
func (f *fixture) expectValue(ctx context.Context, key, value string, createRev, modRev int64) {
	ginkgo.GinkgoHelper()
	gomega.Expect(f.get(ctx, key)).To(gomega.Equal(kv(key, value, createRev, modRev)), "Get(%q)", key)
}

// kv builds the KeyValue a store must return.
func kv(key, value string, createRev, modRev int64) spec.KeyValue {
	return spec.KeyValue{Key: key, Value: []byte(value), CreateRevision: createRev, ModRevision: modRev}
}

// background runs fn in its own goroutine and returns a function that closes
// fn's stop channel, waits for fn to return and returns its error. The spec's
// cleanup stops fn too, if the spec fails first.
func background(fn func(stop <-chan struct{}) error) (stop func() error) {
	stopCh := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- fn(stopCh) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			close(stopCh)
			select {
			case err = <-done:
			case <-time.After(waitTimeout):
				err = fmt.Errorf("background goroutine did not stop within %v", waitTimeout)
			}
		})
		return err
	}
	ginkgo.DeferCleanup(func() { _ = stop() })
	return stop
}

// --- watch recording ---

// recorder drains one watch into memory from its own goroutine, so that a
// spec can wait for events without blocking the store.
type recorder struct {
	w    spec.Watcher
	done chan struct{} // closed when the watch channel is closed

	mu        sync.Mutex     // guards the fields below
	batches   [][]spec.Event // every batch received, error events included
	events    []spec.Event   // every non-error event, in order of arrival
	err       error          // the error of the error event, if any
	afterErr  int            // batches received after a batch with an error event
	emptyRecv int            // empty batches received
}

// watch opens a watch on the spec's store and records it until the spec ends.
func (f *fixture) watch(ctx context.Context, prefix string, after int64) *recorder {
	ginkgo.GinkgoHelper()
	w, err := f.store.Watch(ctx, prefix, after)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Watch(%q, after %d)", prefix, after)
	gomega.Expect(w).NotTo(gomega.BeNil(), "Watch(%q, after %d) returned a nil watcher", prefix, after)
	r := record(w)
	ginkgo.DeferCleanup(r.stop)
	return r
}

// record starts draining w.
func record(w spec.Watcher) *recorder {
	r := &recorder{w: w, done: make(chan struct{})}
	go r.drain()
	return r
}

func (r *recorder) drain() {
	defer close(r.done)
	for batch := range r.w.Events() {
		r.mu.Lock()
		if r.err != nil {
			r.afterErr++
		}
		if len(batch) == 0 {
			r.emptyRecv++
		}
		r.batches = append(r.batches, batch)
		for _, ev := range batch {
			if ev.Type == spec.EventError {
				if r.err == nil {
					r.err = ev.Err
					if r.err == nil {
						r.err = errors.New("error event without an error")
					}
				}
				continue
			}
			r.events = append(r.events, ev)
		}
		r.mu.Unlock()
	}
}

// stop stops the watch and waits for its channel to close.
func (r *recorder) stop() {
	ginkgo.GinkgoHelper()
	r.w.Stop()
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		ginkgo.Fail(fmt.Sprintf("watch channel not closed %v after Stop", stopTimeout))
	}
}

// Events returns a copy of the non-error events received so far.
func (r *recorder) Events() []spec.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]spec.Event(nil), r.events...)
}

// Batches returns a copy of the batches received so far.
func (r *recorder) Batches() [][]spec.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]spec.Event(nil), r.batches...)
}

// Err returns the error of the watch's error event, or nil.
func (r *recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Closed reports whether the watch channel has been closed.
func (r *recorder) Closed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitForRevision waits until the watch has delivered an event at revision
// rev or later, and fails if the watch ends first. It returns the events
// received so far.
func (r *recorder) waitForRevision(ctx context.Context, rev int64) []spec.Event {
	ginkgo.GinkgoHelper()
	gomega.Eventually(ctx, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.err != nil {
			return gomega.StopTrying(fmt.Sprintf("watch ended with an error event before revision %d", rev)).Wrap(r.err)
		}
		for _, ev := range r.events {
			if ev.Revision() >= rev {
				return nil
			}
		}
		if r.Closed() {
			return gomega.StopTrying(fmt.Sprintf("watch channel closed before revision %d; received %v", rev, tail(r.events)))
		}
		return fmt.Errorf("no event at revision %d or later yet; received %d events, the last: %v", rev, len(r.events), tail(r.events))
	}).WithTimeout(waitTimeout).WithPolling(5 * time.Millisecond).Should(gomega.Succeed())
	return r.Events()
}

// tail describes the last few events.
func tail(evs []spec.Event) []string {
	if len(evs) > 5 {
		evs = evs[len(evs)-5:]
	}
	return describeEvents(evs)
}

// waitClosed waits until the watch channel is closed.
func (r *recorder) waitClosed(ctx context.Context, why string) {
	ginkgo.GinkgoHelper()
	gomega.Eventually(ctx, r.Closed).WithTimeout(stopTimeout).WithPolling(5*time.Millisecond).
		Should(gomega.BeTrue(), "watch channel not closed %v after %s", stopTimeout, why)
}

// --- describing events, so that failures read well ---

// describeEvent renders an event as "TYPE key=value (c<create>) [prev value@rev] @rev".
func describeEvent(ev spec.Event) string {
	if ev.Type == spec.EventError {
		return fmt.Sprintf("ERROR %v", ev.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", ev.Type, ev.KV.Key)
	if ev.Type != spec.EventDeleted {
		fmt.Fprintf(&b, "=%s (c%d)", short(ev.KV.Value), ev.KV.CreateRevision)
	}
	if ev.PrevKV != nil {
		fmt.Fprintf(&b, " [prev %s=%s c%d@%d]", ev.PrevKV.Key, short(ev.PrevKV.Value), ev.PrevKV.CreateRevision, ev.PrevKV.ModRevision)
	}
	fmt.Fprintf(&b, " @%d", ev.Revision())
	return b.String()
}

func describeEvents(evs []spec.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = describeEvent(ev)
	}
	return out
}

// short abbreviates a value for messages.
func short(v []byte) string {
	if len(v) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", v[:32], len(v))
	}
	return string(v)
}

// wantEvent describes the event a write must produce, in describeEvent's form.
func wantEvent(typ spec.EventType, cur spec.KeyValue, prev *spec.KeyValue) string {
	return describeEvent(spec.Event{Type: typ, KV: cur, PrevKV: prev})
}
