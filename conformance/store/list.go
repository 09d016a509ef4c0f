package store

import (
	"fmt"
	"slices"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

func describeList(t Target) {
	Describe("Store list", func() {
		f := newFixture(t)

		It("returns the keys under a prefix in ascending byte order with their values and revisions", harness.Labels(CapList), func(ctx SpecContext) {
			Expect(f.list(ctx, f.prefix, spec.ListOptions{}).Items).To(BeEmpty(), "List of a prefix without keys")

			// Created out of order; "/" sorts before "0", "-" before "/".
			names := []string{"b", "a/x", "a0", "a-1", "a/x/y", "c", "a"}
			want := map[string]spec.KeyValue{}
			var last int64
			for _, n := range names {
				k := f.key(n)
				last = f.create(ctx, k, "value of "+n)
				want[k] = kv(k, "value of "+n, last, last)
			}
			keys := make([]string, 0, len(want))
			for k := range want {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			var wantItems []spec.KeyValue
			for _, k := range keys {
				wantItems = append(wantItems, want[k])
			}

			res := f.list(ctx, f.prefix, spec.ListOptions{})
			Expect(describeKVs(res.Items)).To(Equal(describeKVs(wantItems)))
			Expect(res.More).To(BeFalse(), "More without a Limit")
			Expect(res.Revision).To(BeNumerically(">=", last), "the list's Revision must include the last write")
		}, SpecTimeout(specTimeout))

		It("reads at one consistent revision while writes continue", harness.Labels(CapList), func(ctx SpecContext) {
			// A writer sets keys 0..n-1 to generation g, in order, then to
			// g+1, and so on. Any consistent snapshot shows a run of g
			// followed by a run of g-1.
			const n = 8
			keys := make([]string, n)
			for i := range keys {
				keys[i] = f.key(fmt.Sprintf("k%d", i))
				f.create(ctx, keys[i], "0")
			}
			stopWriter := background(func(stop <-chan struct{}) error {
				for g := 1; ; g++ {
					for _, k := range keys {
						select {
						case <-stop:
							return nil
						default:
						}
						if _, err := f.store.Update(ctx, k, []byte(strconv.Itoa(g)), 0); err != nil {
							return fmt.Errorf("writer: Update(%q): %w", k, err)
						}
					}
				}
			})

			for i := 0; i < 200; i++ {
				res := f.list(ctx, f.prefix, spec.ListOptions{})
				Expect(res.Items).To(HaveLen(n))
				gens := make([]int, n)
				for j, item := range res.Items {
					Expect(item.ModRevision).To(BeNumerically("<=", res.Revision), "an item's ModRevision above the list's Revision")
					gens[j], _ = strconv.Atoi(string(item.Value))
				}
				Expect(consistentGenerations(gens)).To(BeTrue(),
					"list %d at revision %d is not one snapshot: generations %v", i, res.Revision, gens)
				if i%20 == 0 {
					again := f.list(ctx, f.prefix, spec.ListOptions{Revision: res.Revision})
					Expect(again.Revision).To(Equal(res.Revision))
					Expect(describeKVs(again.Items)).To(Equal(describeKVs(res.Items)),
						"List at revision %d must repeat the list read at that revision", res.Revision)
				}
			}
			Expect(stopWriter()).To(Succeed())
		}, SpecTimeout(specTimeout))

		It("pages with Limit and After at the first page's revision and returns exactly that snapshot", harness.Labels(CapList), func(ctx SpecContext) {
			const n = 25
			var snapshot []spec.KeyValue
			for i := 0; i < n; i++ {
				k := f.key(fmt.Sprintf("item-%02d", i))
				rev := f.create(ctx, k, "v0")
				snapshot = append(snapshot, kv(k, "v0", rev, rev))
			}

			first := f.list(ctx, f.prefix, spec.ListOptions{Limit: 4})
			Expect(describeKVs(first.Items)).To(Equal(describeKVs(snapshot[:4])), "first page")
			Expect(first.More).To(BeTrue(), "More on a page cut short by Limit")
			at := first.Revision

			// Writes between pages: in the pages to come, and new keys.
			mutations := []func(){
				func() { f.update(ctx, f.key("item-10"), "v1", 0) },
				func() { f.delete(ctx, f.key("item-20"), 0) },
				func() { f.create(ctx, f.key("item-05a"), "new") },
				func() { f.create(ctx, f.key("item-99"), "new") },
				func() { f.update(ctx, f.key("item-24"), "v1", 0) },
				func() { f.delete(ctx, f.key("item-06"), 0) },
			}
			got := slices.Clone(first.Items)
			more := first.More
			for page := 0; more; page++ {
				Expect(page).To(BeNumerically("<", n), "paging does not end")
				if page < len(mutations) {
					mutations[page]()
				}
				res := f.list(ctx, f.prefix, spec.ListOptions{Revision: at, Limit: 4, After: got[len(got)-1].Key})
				Expect(res.Revision).To(Equal(at), "a page read at revision %d reports another revision", at)
				Expect(len(res.Items)).To(BeNumerically("<=", 4), "a page holds at most Limit keys")
				if res.More {
					Expect(res.Items).NotTo(BeEmpty(), "a page with More must hold keys")
				}
				got = append(got, res.Items...)
				more = res.More
			}
			Expect(describeKVs(got)).To(Equal(describeKVs(snapshot)), "the pages must add up to the snapshot at revision %d", at)

			By("cutting short exactly when more keys follow")
			all := f.list(ctx, f.prefix, spec.ListOptions{Revision: at, Limit: n})
			Expect(all.Items).To(HaveLen(n))
			Expect(all.More).To(BeFalse(), "More with Limit equal to the number of keys")
			most := f.list(ctx, f.prefix, spec.ListOptions{Revision: at, Limit: n - 1})
			Expect(most.Items).To(HaveLen(n - 1))
			Expect(most.More).To(BeTrue(), "More with Limit one below the number of keys")

			By("continuing after a key that does not exist at that revision")
			res := f.list(ctx, f.prefix, spec.ListOptions{Revision: at, After: f.key("item-05a")})
			Expect(describeKVs(res.Items)).To(Equal(describeKVs(snapshot[6:])))

			By("showing the writes at the current revision")
			now := f.list(ctx, f.prefix, spec.ListOptions{})
			Expect(now.Revision).To(BeNumerically(">", at))
			Expect(now.Items).To(HaveLen(n), "25 keys, 2 created and 2 deleted")
		}, SpecTimeout(specTimeout))

		It("reads the old values at an old revision", harness.Labels(CapList), func(ctx SpecContext) {
			k1, k2 := f.key("k1"), f.key("k2")
			before := f.revision(ctx)
			r1 := f.create(ctx, k1, "v1")
			r2 := f.update(ctx, k1, "v2", r1)
			r3 := f.create(ctx, k2, "w1")
			_, r4 := f.delete(ctx, k1, r2)

			for _, c := range []struct {
				rev  int64
				want []spec.KeyValue
			}{
				{before, nil},
				{r1, []spec.KeyValue{kv(k1, "v1", r1, r1)}},
				{r2, []spec.KeyValue{kv(k1, "v2", r1, r2)}},
				{r3, []spec.KeyValue{kv(k1, "v2", r1, r2), kv(k2, "w1", r3, r3)}},
				{r4, []spec.KeyValue{kv(k2, "w1", r3, r3)}},
			} {
				res := f.list(ctx, f.prefix, spec.ListOptions{Revision: c.rev})
				Expect(res.Revision).To(Equal(c.rev), "List at revision %d reports another revision", c.rev)
				Expect(describeKVs(res.Items)).To(Equal(describeKVs(c.want)), "List at revision %d", c.rev)
			}
		}, SpecTimeout(specTimeout))

		It("rejects a revision newer than the current one with ErrFutureRevision", harness.Labels(CapList), func(ctx SpecContext) {
			f.create(ctx, f.key("k"), "v")
			cur := f.revision(ctx)
			_, err := f.store.List(ctx, f.prefix, spec.ListOptions{Revision: cur + 1_000_000_000})
			Expect(err).To(MatchError(spec.ErrFutureRevision), "List far beyond the current revision %d", cur)
			res := f.list(ctx, f.prefix, spec.ListOptions{Revision: cur})
			Expect(res.Items).To(HaveLen(1), "List at the current revision")
		}, SpecTimeout(specTimeout))
	})
}

// consistentGenerations reports whether gens is a run of some g followed by
// a run of g-1 (either run may be empty).
func consistentGenerations(gens []int) bool {
	for i := 1; i < len(gens); i++ {
		if gens[i] != gens[0] && gens[i] != gens[0]-1 {
			return false
		}
		if gens[i] > gens[i-1] {
			return false
		}
	}
	return true
}

// describeKVs renders key-values as "key=value c<create>@<mod>" for messages
// and comparisons.
func describeKVs(kvs []spec.KeyValue) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, fmt.Sprintf("%s=%s c%d@%d", kv.Key, short(kv.Value), kv.CreateRevision, kv.ModRevision))
	}
	return out
}
