package store

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// prefixNeighbours are the names around the directory "a": inside it
// ("a/x", "a/x/y") and outside it ("a" itself, "ab", "ab/x", and "a.", "a0"
// which sort just before and after "a/").
var (
	prefixInside  = []string{"a/x", "a/x/y"}
	prefixOutside = []string{"a", "ab", "ab/x", "a.", "a0"}
)

func describePrefix(t Target) {
	Describe("Store prefixes", func() {
		f := newFixture(t)

		It("list /a covers /a/x and /a/x/y but neither /a itself nor /ab", harness.Labels(CapPrefix), func(ctx SpecContext) {
			revs := map[string]int64{}
			for _, n := range append(append([]string{}, prefixOutside...), prefixInside...) {
				revs[n] = f.create(ctx, f.key(n), n)
			}
			var want []spec.KeyValue
			for _, n := range prefixInside {
				want = append(want, kv(f.key(n), n, revs[n], revs[n]))
			}
			for _, p := range []string{f.key("a"), f.key("a") + "/"} {
				Expect(describeKVs(f.list(ctx, p, spec.ListOptions{}).Items)).To(Equal(describeKVs(want)), "List(%q)", p)
			}
			Expect(describeKVs(f.list(ctx, f.key("a/x"), spec.ListOptions{}).Items)).To(Equal(describeKVs(want[1:])), "List of a nested prefix")
			Expect(f.list(ctx, f.key("a/x/y"), spec.ListOptions{}).Items).To(BeEmpty(), "List of a prefix that is a key without children")
		}, SpecTimeout(specTimeout))

		It("watch /a sees /a/x and /a/x/y but neither /a itself nor /ab", harness.Labels(CapPrefix), func(ctx SpecContext) {
			w := f.watch(ctx, f.key("a"), 0)
			wSlash := f.watch(ctx, f.key("a")+"/", 0)
			var want []string
			for _, n := range prefixOutside {
				f.create(ctx, f.key(n), n)
			}
			for _, n := range prefixInside {
				rev := f.create(ctx, f.key(n), n)
				want = append(want, wantEvent(spec.EventCreated, kv(f.key(n), n, rev, rev), nil))
			}
			for _, n := range prefixOutside {
				f.update(ctx, f.key(n), n+"'", 0)
			}
			barrier := f.key("a", "zz-barrier")
			rev := f.create(ctx, barrier, "b")
			want = append(want, wantEvent(spec.EventCreated, kv(barrier, "b", rev, rev), nil))
			Expect(describeEvents(w.waitForRevision(ctx, rev))).To(Equal(want), "events of Watch(%q)", f.key("a"))
			Expect(describeEvents(wSlash.waitForRevision(ctx, rev))).To(Equal(want), "events of Watch(%q)", f.key("a")+"/")
		}, SpecTimeout(specTimeout))
	})
}
