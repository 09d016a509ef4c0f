package store

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

func describeCRUD(t Target) {
	Describe("Store CRUD", func() {
		f := newFixture(t)

		It("round-trips a key through create, get, update and delete with its revisions", harness.Labels(CapCRUD), func(ctx SpecContext) {
			k := f.key("pods", "web-1")
			before := f.revision(ctx)

			created := f.create(ctx, k, "v1")
			Expect(created).To(BeNumerically(">", before), "Create must commit at a revision above the store's revision before it")
			f.expectValue(ctx, k, "v1", created, created)
			Expect(f.revision(ctx)).To(BeNumerically(">=", created), "Revision after a Create")

			updated := f.update(ctx, k, "v2", 0)
			Expect(updated).To(BeNumerically(">", created), "Update must commit at a later revision")
			By("keeping the CreateRevision and setting ModRevision to the update's revision")
			f.expectValue(ctx, k, "v2", created, updated)

			prev, deleted := f.delete(ctx, k, 0)
			Expect(deleted).To(BeNumerically(">", updated), "Delete must commit at a later revision")
			Expect(prev).To(Equal(kv(k, "v2", created, updated)), "Delete returns the key's last state")
			f.expectMissing(ctx, k)
			Expect(f.revision(ctx)).To(BeNumerically(">=", deleted), "Revision after a Delete")

			By("creating the key anew with a new CreateRevision")
			again := f.create(ctx, k, "v3")
			Expect(again).To(BeNumerically(">", deleted))
			f.expectValue(ctx, k, "v3", again, again)
		}, SpecTimeout(specTimeout))

		It("rejects creating a key that exists with ErrAlreadyExists and leaves it unchanged", harness.Labels(CapCRUD), func(ctx SpecContext) {
			k := f.key("a")
			rev := f.create(ctx, k, "first")
			_, err := f.store.Create(ctx, k, []byte("second"), spec.CreateOptions{})
			Expect(err).To(MatchError(spec.ErrAlreadyExists), "Create of an existing key")
			f.expectValue(ctx, k, "first", rev, rev)
		}, SpecTimeout(specTimeout))

		It("reports ErrNotFound for get, update and delete of a missing key and writes nothing", harness.Labels(CapCRUD), func(ctx SpecContext) {
			k := f.key("missing")
			_, err := f.store.Get(ctx, k)
			Expect(err).To(MatchError(spec.ErrNotFound), "Get of a missing key")
			_, err = f.store.Update(ctx, k, []byte("x"), 0)
			Expect(err).To(MatchError(spec.ErrNotFound), "Update of a missing key")
			_, _, err = f.store.Delete(ctx, k, 0)
			Expect(err).To(MatchError(spec.ErrNotFound), "Delete of a missing key")
			f.expectMissing(ctx, k)

			By("treating a deleted key as missing")
			rev := f.create(ctx, k, "x")
			f.delete(ctx, k, rev)
			_, err = f.store.Update(ctx, k, []byte("y"), 0)
			Expect(err).To(MatchError(spec.ErrNotFound), "Update of a deleted key")
			_, _, err = f.store.Delete(ctx, k, 0)
			Expect(err).To(MatchError(spec.ErrNotFound), "Delete of a deleted key")
			f.expectMissing(ctx, k)
			Expect(f.list(ctx, f.prefix, spec.ListOptions{}).Items).To(BeEmpty(), "no key may have been written")
		}, SpecTimeout(specTimeout))

		It("neither retains the caller's value slices nor shares the slices it returns", harness.Labels(CapCRUD), func(ctx SpecContext) {
			k := f.key("owned")
			value := []byte("original")
			_, err := f.store.Create(ctx, k, value, spec.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			copy(value, "XXXXXXXX")
			Expect(string(f.get(ctx, k).Value)).To(Equal("original"), "the store kept the slice passed to Create")

			update := []byte("updated!")
			_, err = f.store.Update(ctx, k, update, 0)
			Expect(err).NotTo(HaveOccurred())
			copy(update, "YYYYYYYY")

			got := f.get(ctx, k)
			Expect(string(got.Value)).To(Equal("updated!"), "the store kept the slice passed to Update")
			copy(got.Value, "ZZZZZZZZ")
			Expect(string(f.get(ctx, k).Value)).To(Equal("updated!"), "Get returned a slice the store still uses")

			listed := f.list(ctx, f.prefix, spec.ListOptions{})
			Expect(listed.Items).To(HaveLen(1))
			copy(listed.Items[0].Value, "ZZZZZZZZ")
			Expect(string(f.get(ctx, k).Value)).To(Equal("updated!"), "List returned a slice the store still uses")
		}, SpecTimeout(specTimeout))
	})
}
