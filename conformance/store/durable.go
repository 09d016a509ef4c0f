package store

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

func describeDurability(t Target) {
	Describe("Store durability", func() {
		BeforeEach(func() { harness.Require(t.Capabilities, spec.CapStoreDurable) })
		f := newFixture(t)

		It("keeps committed keys, their revisions and the store's revision across Close and Open with the same data directory", harness.Labels(spec.CapStoreDurable), func(ctx SpecContext) {
			a, b, c := f.key("a"), f.key("b"), f.key("c")
			big := randomBytes(spec.MaxValueSize)
			ra := f.create(ctx, a, "a1")
			rb := f.create(ctx, b, "b1")
			rc, err := f.store.Create(ctx, c, big, spec.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			ra2 := f.update(ctx, a, "a2", ra)
			f.delete(ctx, b, rb)
			last := f.update(ctx, a, "a3", ra2)
			before := f.list(ctx, f.prefix, spec.ListOptions{})

			for round := range 2 {
				By("closing and opening the store again")
				f.reopen(ctx)
				after := f.list(ctx, f.prefix, spec.ListOptions{})
				Expect(describeKVs(after.Items)).To(Equal(describeKVs(before.Items)), "keys after reopening (round %d)", round)
				got := f.get(ctx, c)
				Expect(got.Value).To(Equal(big), "a MaxValueSize value after reopening")
				Expect([]int64{got.CreateRevision, got.ModRevision}).To(Equal([]int64{rc, rc}), "revisions of a key after reopening")
				f.expectMissing(ctx, b)
				Expect(f.revision(ctx)).To(BeNumerically(">=", last), "the store's revision must not go back")

				By("writing on at revisions above every revision before the restart")
				next := f.update(ctx, a, "a4", last)
				Expect(next).To(BeNumerically(">", last))
				f.expectValue(ctx, a, "a4", ra, next)
				last = next
				before = f.list(ctx, f.prefix, spec.ListOptions{})
			}
		}, SpecTimeout(specTimeout))
	})
}
