package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// randomBytes returns n random bytes: every byte value, NUL and invalid
// UTF-8 included.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func describeValues(t Target) {
	Describe("Store values", func() {
		f := newFixture(t)

		It("round-trip byte for byte up to MaxValueSize through get, list and watch", harness.Labels(CapLargeValues), func(ctx SpecContext) {
			w := f.watch(ctx, f.prefix, 0)
			sizes := []int{1, 1 << 10, 64 << 10, 1 << 20, spec.MaxValueSize}
			values := map[string][]byte{}
			var last int64
			for _, n := range sizes {
				k := f.key(fmt.Sprintf("size-%d", n))
				v := randomBytes(n)
				rev, err := f.store.Create(ctx, k, v, spec.CreateOptions{})
				Expect(err).NotTo(HaveOccurred(), "Create of a %d-byte value", n)
				values[k] = v
				last = rev
			}
			big := f.key(fmt.Sprintf("size-%d", spec.MaxValueSize))
			replaced := randomBytes(spec.MaxValueSize)
			last, err := f.store.Update(ctx, big, replaced, 0)
			Expect(err).NotTo(HaveOccurred(), "Update with a MaxValueSize value")

			for k, v := range values {
				want := v
				if k == big {
					want = replaced
				}
				got := f.get(ctx, k)
				Expect(bytes.Equal(got.Value, want)).To(BeTrue(), "Get(%q) returned %d bytes that differ from the %d written", k, len(got.Value), len(want))
			}
			for _, item := range f.list(ctx, f.prefix, spec.ListOptions{}).Items {
				want := values[item.Key]
				if item.Key == big {
					want = replaced
				}
				Expect(bytes.Equal(item.Value, want)).To(BeTrue(), "List returned %d bytes for %q that differ from the %d written", len(item.Value), item.Key, len(want))
			}

			evs := w.waitForRevision(ctx, last)
			Expect(evs).To(HaveLen(len(sizes) + 1))
			for _, ev := range evs[:len(sizes)] {
				Expect(bytes.Equal(ev.KV.Value, values[ev.KV.Key])).To(BeTrue(), "watch event of %q carries other bytes", ev.KV.Key)
			}
			upd := evs[len(sizes)]
			Expect(upd.Type).To(Equal(spec.EventUpdated))
			Expect(bytes.Equal(upd.KV.Value, replaced)).To(BeTrue(), "watch event of the update carries other bytes")
			Expect(upd.PrevKV).NotTo(BeNil(), "PrevKV of an update")
			Expect(bytes.Equal(upd.PrevKV.Value, values[big])).To(BeTrue(), "PrevKV of the update carries other bytes")
		}, SpecTimeout(specTimeout))

		It("keep an empty value empty, distinct from a missing key", harness.Labels(CapLargeValues), func(ctx SpecContext) {
			k := f.key("empty")
			rev, err := f.store.Create(ctx, k, []byte{}, spec.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "Create with an empty value")
			got := f.get(ctx, k)
			Expect(got.Value).To(BeEmpty())
			Expect(got.ModRevision).To(Equal(rev))
			_, err = f.store.Create(ctx, k, []byte{}, spec.CreateOptions{})
			Expect(err).To(MatchError(spec.ErrAlreadyExists), "Create of an existing key with an empty value")

			k2 := f.key("emptied")
			f.create(ctx, k2, "something")
			_, err = f.store.Update(ctx, k2, []byte{}, 0)
			Expect(err).NotTo(HaveOccurred(), "Update to an empty value")
			Expect(f.get(ctx, k2).Value).To(BeEmpty())
			Expect(f.list(ctx, f.prefix, spec.ListOptions{}).Items).To(HaveLen(2))
		}, SpecTimeout(specTimeout))
	})
}
