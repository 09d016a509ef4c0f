package store

import (
	"context"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// watchError returns the error of a Watch call: the one Watch returned, or
// else that of an error event arriving within watchErrorWait (nil if none
// does).
func watchError(ctx context.Context, s spec.Store, prefix string, after int64) error {
	w, err := s.Watch(ctx, prefix, after)
	if err != nil {
		return err
	}
	r := record(w)
	defer r.stop()
	deadline := time.Now().Add(watchErrorWait)
	for time.Now().Before(deadline) && r.Err() == nil && !r.Closed() {
		time.Sleep(5 * time.Millisecond)
	}
	return r.Err()
}

// watchErrorWait is how long watchError waits for an error event.
const watchErrorWait = 5 * time.Second

func describeBadInput(t Target) {
	Describe("Store input validation", func() {
		f := newFixture(t)

		It("rejects malformed keys with ErrInvalid and writes nothing", harness.Labels(CapBadInput), func(ctx SpecContext) {
			w := f.watch(ctx, f.prefix, 0)
			longest := f.prefix + "/" + strings.Repeat("k", spec.MaxKeySize-len(f.prefix)-1)
			bad := map[string]string{
				"empty":       "",
				"relative":    "relative/key",
				"NUL byte":    f.key("nul\x00byte"),
				"not UTF-8":   f.key("bad-\xff\xfe"),
				"over length": longest + "k",
			}
			for what, k := range bad {
				_, err := f.store.Get(ctx, k)
				Expect(err).To(MatchError(spec.ErrInvalid), "Get of a key that is %s", what)
				_, err = f.store.Create(ctx, k, []byte("v"), spec.CreateOptions{})
				Expect(err).To(MatchError(spec.ErrInvalid), "Create of a key that is %s", what)
				_, err = f.store.Update(ctx, k, []byte("v"), 0)
				Expect(err).To(MatchError(spec.ErrInvalid), "Update of a key that is %s", what)
				_, _, err = f.store.Delete(ctx, k, 0)
				Expect(err).To(MatchError(spec.ErrInvalid), "Delete of a key that is %s", what)
				_, err = f.store.List(ctx, k, spec.ListOptions{})
				Expect(err).To(MatchError(spec.ErrInvalid), "List of a prefix that is %s", what)
				Expect(watchError(ctx, f.store, k, 0)).To(MatchError(spec.ErrInvalid), "Watch of a prefix that is %s", what)
			}

			By("accepting a key of exactly MaxKeySize bytes")
			Expect(longest).To(HaveLen(spec.MaxKeySize))
			rev := f.create(ctx, longest, "v")
			f.expectValue(ctx, longest, "v", rev, rev)
			evs := w.waitForRevision(ctx, rev)
			Expect(describeEvents(evs)).To(Equal([]string{wantEvent(spec.EventCreated, kv(longest, "v", rev, rev), nil)}),
				"no rejected write may show up in a watch")
			Expect(describeKVs(f.list(ctx, f.prefix, spec.ListOptions{}).Items)).To(Equal(describeKVs([]spec.KeyValue{kv(longest, "v", rev, rev)})))
		}, SpecTimeout(specTimeout))

		It("rejects a nil value with ErrInvalid, and a value over MaxValueSize with ErrInvalid unless it stores it whole", harness.Labels(CapBadInput), func(ctx SpecContext) {
			k := f.key("existing")
			rev := f.create(ctx, k, "v")
			_, err := f.store.Create(ctx, f.key("nil"), nil, spec.CreateOptions{})
			Expect(err).To(MatchError(spec.ErrInvalid), "Create with a nil value")
			_, err = f.store.Update(ctx, k, nil, 0)
			Expect(err).To(MatchError(spec.ErrInvalid), "Update with a nil value")
			f.expectMissing(ctx, f.key("nil"))
			f.expectValue(ctx, k, "v", rev, rev)

			// A store may accept more than MaxValueSize; one that does not
			// must say ErrInvalid and write nothing.
			over := randomBytes(spec.MaxValueSize + 1)
			bigKey := f.key("big")
			if _, err := f.store.Create(ctx, bigKey, over, spec.CreateOptions{}); err != nil {
				Expect(err).To(MatchError(spec.ErrInvalid), "Create with a value over MaxValueSize")
				f.expectMissing(ctx, bigKey)
			} else {
				Expect(f.get(ctx, bigKey).Value).To(Equal(over), "a value over MaxValueSize that the store accepted")
			}
			if _, err := f.store.Update(ctx, k, over, rev); err != nil {
				Expect(err).To(MatchError(spec.ErrInvalid), "Update with a value over MaxValueSize")
				f.expectValue(ctx, k, "v", rev, rev)
			} else {
				Expect(f.get(ctx, k).Value).To(Equal(over), "a value over MaxValueSize that the store accepted")
			}
		}, SpecTimeout(specTimeout))

		It("rejects negative revisions and limits with ErrInvalid and writes nothing", harness.Labels(CapBadInput), func(ctx SpecContext) {
			k := f.key("k")
			rev := f.create(ctx, k, "v")
			_, err := f.store.List(ctx, f.prefix, spec.ListOptions{Revision: -1})
			Expect(err).To(MatchError(spec.ErrInvalid), "List at revision -1")
			_, err = f.store.List(ctx, f.prefix, spec.ListOptions{Limit: -1})
			Expect(err).To(MatchError(spec.ErrInvalid), "List with limit -1")
			_, err = f.store.Update(ctx, k, []byte("x"), -1)
			Expect(err).To(MatchError(spec.ErrInvalid), "Update expecting revision -1")
			_, _, err = f.store.Delete(ctx, k, -1)
			Expect(err).To(MatchError(spec.ErrInvalid), "Delete expecting revision -1")
			Expect(watchError(ctx, f.store, f.prefix, -1)).To(MatchError(spec.ErrInvalid), "Watch after revision -1")
			Expect(f.store.Compact(ctx, -1)).To(MatchError(spec.ErrInvalid), "Compact to revision -1")
			f.expectValue(ctx, k, "v", rev, rev)
		}, SpecTimeout(specTimeout))

		It("fails every call with ErrClosed after Close and ends open watches with ErrClosed", harness.Labels(CapBadInput), func(ctx SpecContext) {
			k := f.key("k")
			rev := f.create(ctx, k, "v")
			w := f.watch(ctx, f.prefix, 0)
			Expect(f.store.Close()).To(Succeed(), "Close")
			w.waitClosed(ctx, "Close")
			Expect(w.Err()).To(MatchError(spec.ErrClosed), "the final error event of a watch open at Close")

			s := f.store
			_, err := s.Get(ctx, k)
			Expect(err).To(MatchError(spec.ErrClosed), "Get after Close")
			_, err = s.List(ctx, f.prefix, spec.ListOptions{})
			Expect(err).To(MatchError(spec.ErrClosed), "List after Close")
			_, err = s.Create(ctx, f.key("new"), []byte("v"), spec.CreateOptions{})
			Expect(err).To(MatchError(spec.ErrClosed), "Create after Close")
			_, err = s.Update(ctx, k, []byte("x"), rev)
			Expect(err).To(MatchError(spec.ErrClosed), "Update after Close")
			_, _, err = s.Delete(ctx, k, rev)
			Expect(err).To(MatchError(spec.ErrClosed), "Delete after Close")
			Expect(watchError(ctx, s, f.prefix, 0)).To(MatchError(spec.ErrClosed), "Watch after Close")
			Expect(s.Compact(ctx, rev)).To(MatchError(spec.ErrClosed), "Compact after Close")
			_, err = s.Revision(ctx)
			Expect(err).To(MatchError(spec.ErrClosed), "Revision after Close")
			Expect(s.Close()).To(Succeed(), "a second Close")
		}, SpecTimeout(specTimeout))

		It("ends a watch by closing its channel without an error event when its context is cancelled or it is stopped", harness.Labels(CapBadInput), func(ctx SpecContext) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			byCancel := f.watch(wctx, f.prefix, 0)
			byStop := f.watch(ctx, f.prefix, 0)
			rev := f.create(ctx, f.key("k"), "v")
			byCancel.waitForRevision(ctx, rev)
			byStop.waitForRevision(ctx, rev)

			cancel()
			byCancel.waitClosed(ctx, "its context was cancelled")
			Expect(byCancel.Err()).NotTo(HaveOccurred(), "a cancelled watch must end without an error event")

			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer GinkgoRecover()
					byStop.w.Stop()
				}()
			}
			wg.Wait()
			byStop.waitClosed(ctx, "Stop was called twice concurrently")
			Expect(byStop.Err()).NotTo(HaveOccurred(), "a stopped watch must end without an error event")

			By("writing on after the watches ended")
			f.update(ctx, f.key("k"), "w", 0)
			f.expectValue(ctx, f.key("k"), "w", rev, f.get(ctx, f.key("k")).ModRevision)
		}, SpecTimeout(specTimeout))

		It("fails calls made with a cancelled context with the context's error", harness.Labels(CapBadInput), func(ctx SpecContext) {
			k := f.key("k")
			rev := f.create(ctx, k, "v")
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			_, err := f.store.Get(cancelled, k)
			Expect(err).To(MatchError(context.Canceled), "Get with a cancelled context")
			_, err = f.store.List(cancelled, f.prefix, spec.ListOptions{})
			Expect(err).To(MatchError(context.Canceled), "List with a cancelled context")
			_, err = f.store.Revision(cancelled)
			Expect(err).To(MatchError(context.Canceled), "Revision with a cancelled context")
			_, err = f.store.Create(cancelled, f.key("new"), []byte("v"), spec.CreateOptions{})
			Expect(err).To(MatchError(context.Canceled), "Create with a cancelled context")
			_, err = f.store.Update(cancelled, k, []byte("x"), rev)
			Expect(err).To(MatchError(context.Canceled), "Update with a cancelled context")
			_, _, err = f.store.Delete(cancelled, k, rev)
			Expect(err).To(MatchError(context.Canceled), "Delete with a cancelled context")
			if w, err := f.store.Watch(cancelled, f.prefix, 0); err != nil {
				Expect(err).To(MatchError(context.Canceled), "Watch with a cancelled context")
			} else {
				r := record(w)
				DeferCleanup(r.stop)
				r.waitClosed(ctx, "Watch was called with a cancelled context")
			}
		}, SpecTimeout(specTimeout))

		It("rejects a TTL with ErrUnsupported unless it claims store:ttl", harness.Labels(CapBadInput), func(ctx SpecContext) {
			k := f.key("ttl")
			_, err := f.store.Create(ctx, k, []byte("v"), spec.CreateOptions{TTL: time.Hour})
			if t.Capabilities.Has(spec.CapStoreTTL) {
				Expect(err).NotTo(HaveOccurred(), "Create with a TTL on a store that claims %s", spec.CapStoreTTL)
				return
			}
			Expect(err).To(MatchError(spec.ErrUnsupported), "Create with a TTL on a store that does not claim %s", spec.CapStoreTTL)
			f.expectMissing(ctx, k)
		}, SpecTimeout(specTimeout))
	})
}
