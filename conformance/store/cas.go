package store

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

func describeCAS(t Target) {
	Describe("Store compare-and-swap", func() {
		f := newFixture(t)

		It("updates a key only when the expected revision is its mod revision", harness.Labels(CapCAS), func(ctx SpecContext) {
			k := f.key("cas")
			created := f.create(ctx, k, "v1")
			updated := f.update(ctx, k, "v2", created)
			Expect(updated).To(BeNumerically(">", created))
			f.expectValue(ctx, k, "v2", created, updated)

			By("refusing a stale expected revision with ErrConflict")
			_, err := f.store.Update(ctx, k, []byte("stale"), created)
			Expect(err).To(MatchError(spec.ErrConflict), "Update with the revision before the last write")
			By("refusing an expected revision the key never had with ErrConflict")
			_, err = f.store.Update(ctx, k, []byte("future"), updated+1_000_000)
			Expect(err).To(MatchError(spec.ErrConflict), "Update with a revision above the key's")
			f.expectValue(ctx, k, "v2", created, updated)

			again := f.update(ctx, k, "v3", updated)
			f.expectValue(ctx, k, "v3", created, again)
		}, SpecTimeout(specTimeout))

		It("refuses a stale compare-and-swap even when the key already holds the value written", harness.Labels(CapCAS), func(ctx SpecContext) {
			k := f.key("same")
			created := f.create(ctx, k, "v1")
			updated := f.update(ctx, k, "v2", created)

			By("refusing the current value with a stale expected revision")
			_, err := f.store.Update(ctx, k, []byte("v2"), created)
			Expect(err).To(MatchError(spec.ErrConflict), "Update to the value the key holds, expecting the revision before the last write")
			f.expectValue(ctx, k, "v2", created, updated)

			By("writing the current value again, at a new revision, with the current expected revision")
			again := f.update(ctx, k, "v2", updated)
			Expect(again).To(BeNumerically(">", updated), "an Update that changes no byte is still a write")
			f.expectValue(ctx, k, "v2", created, again)
		}, SpecTimeout(specTimeout))

		It("deletes a key only when the expected revision is its mod revision", harness.Labels(CapCAS), func(ctx SpecContext) {
			k := f.key("cas")
			created := f.create(ctx, k, "v1")
			updated := f.update(ctx, k, "v2", 0)

			_, _, err := f.store.Delete(ctx, k, created)
			Expect(err).To(MatchError(spec.ErrConflict), "Delete with a stale expected revision")
			f.expectValue(ctx, k, "v2", created, updated)

			prev, _ := f.delete(ctx, k, updated)
			Expect(prev).To(Equal(kv(k, "v2", created, updated)))
			f.expectMissing(ctx, k)
		}, SpecTimeout(specTimeout))

		It("writes unconditionally when the expected revision is 0", harness.Labels(CapCAS), func(ctx SpecContext) {
			k := f.key("blind")
			created := f.create(ctx, k, "v1")
			f.update(ctx, k, "v2", 0)
			third := f.update(ctx, k, "v3", 0)
			f.expectValue(ctx, k, "v3", created, third)
			prev, _ := f.delete(ctx, k, 0)
			Expect(prev).To(Equal(kv(k, "v3", created, third)))
			f.expectMissing(ctx, k)
		}, SpecTimeout(specTimeout))

		It("reports ErrNotFound, not ErrConflict, for a missing key with an expected revision", harness.Labels(CapCAS), func(ctx SpecContext) {
			k := f.key("gone")
			rev := f.create(ctx, k, "v1")
			_, del := f.delete(ctx, k, 0)
			for _, expected := range []int64{rev, del, del + 1_000_000} {
				_, err := f.store.Update(ctx, k, []byte("v2"), expected)
				Expect(err).To(MatchError(spec.ErrNotFound), "Update of a deleted key expecting revision %d", expected)
				Expect(err).NotTo(MatchError(spec.ErrConflict))
				_, _, err = f.store.Delete(ctx, k, expected)
				Expect(err).To(MatchError(spec.ErrNotFound), "Delete of a deleted key expecting revision %d", expected)
				Expect(err).NotTo(MatchError(spec.ErrConflict))
			}
			f.expectMissing(ctx, k)
		}, SpecTimeout(specTimeout))
	})
}
