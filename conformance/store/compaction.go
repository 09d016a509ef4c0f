package store

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// Compaction is store-wide, so these specs are Serial: a target whose specs
// share one server must not compact under another spec's feet.
func describeCompaction(t Target) {
	Describe("Store compaction", func() {
		f := newFixture(t)

		It("fails list and watch from a compacted revision with ErrCompacted and keeps the current state", harness.Labels(CapWatchCompacted, harness.LabelSerial), func(ctx SpecContext) {
			k1, k2 := f.key("k1"), f.key("k2")
			j := newJournal(f.store)
			r1, err := j.create(ctx, k1, "v1")
			Expect(err).NotTo(HaveOccurred())
			r2, err := j.update(ctx, k1, "v2", 0)
			Expect(err).NotTo(HaveOccurred())
			r3, err := j.create(ctx, k2, "w1")
			Expect(err).NotTo(HaveOccurred())
			r4, err := j.update(ctx, k1, "v3", r2)
			Expect(err).NotTo(HaveOccurred())
			r5, err := j.delete(ctx, k2, r3)
			Expect(err).NotTo(HaveOccurred())

			Expect(f.store.Compact(ctx, r3)).To(Succeed(), "Compact to revision %d", r3)

			for _, rev := range []int64{r1, r2} {
				_, err := f.store.List(ctx, f.prefix, spec.ListOptions{Revision: rev})
				Expect(err).To(MatchError(spec.ErrCompacted), "List at revision %d, compacted at %d", rev, r3)
			}
			Expect(watchError(ctx, f.store, f.prefix, r1)).To(MatchError(spec.ErrCompacted), "Watch after revision %d, compacted at %d", r1, r3)

			By("keeping the compacted revision itself and everything after it")
			Expect(describeKVs(f.list(ctx, f.prefix, spec.ListOptions{Revision: r3}).Items)).To(Equal(describeKVs([]spec.KeyValue{
				kv(k1, "v2", r1, r2), kv(k2, "w1", r3, r3),
			})), "List at the compacted revision")
			Expect(describeKVs(f.list(ctx, f.prefix, spec.ListOptions{Revision: r4}).Items)).To(Equal(describeKVs([]spec.KeyValue{
				kv(k1, "v3", r1, r4), kv(k2, "w1", r3, r3),
			})), "List at a revision after the compaction")
			w := f.watch(ctx, f.prefix, r3)
			Expect(describeEvents(w.waitForRevision(ctx, r5))).To(Equal(j.after(r3)), "Watch after the compacted revision")

			By("keeping the current state")
			f.expectValue(ctx, k1, "v3", r1, r4)
			f.expectMissing(ctx, k2)
			Expect(f.revision(ctx)).To(BeNumerically(">=", r5))
		}, SpecTimeout(specTimeout))

		It("rejects compacting at or below the last compaction with ErrCompacted and beyond the current revision with ErrFutureRevision", harness.Labels(CapWatchCompacted, harness.LabelSerial), func(ctx SpecContext) {
			k := f.key("k")
			r1 := f.create(ctx, k, "v1")
			r2 := f.update(ctx, k, "v2", 0)
			r3 := f.update(ctx, k, "v3", 0)
			Expect(f.store.Compact(ctx, r2)).To(Succeed(), "Compact to revision %d", r2)
			Expect(f.store.Compact(ctx, r2)).To(MatchError(spec.ErrCompacted), "Compact to the last compacted revision again")
			Expect(f.store.Compact(ctx, r1)).To(MatchError(spec.ErrCompacted), "Compact to a revision below the last compaction")
			cur := f.revision(ctx)
			Expect(f.store.Compact(ctx, cur+1_000_000_000)).To(MatchError(spec.ErrFutureRevision), "Compact beyond the current revision %d", cur)
			Expect(f.store.Compact(ctx, r3)).To(Succeed(), "Compact to a later revision")
			f.expectValue(ctx, k, "v3", r1, r3)
		}, SpecTimeout(specTimeout))
	})
}
