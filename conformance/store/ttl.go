package store

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// ttl is the time to live the specs give keys; stores may round it up to a
// second or two (etcd's minimum lease TTL).
const ttl = time.Second

func describeTTL(t Target) {
	Describe("Store TTL", func() {
		BeforeEach(func() { harness.Require(t.Capabilities, spec.CapStoreTTL) })
		f := newFixture(t)

		It("expires a key created with a TTL with a Deleted event", harness.Labels(spec.CapStoreTTL), func(ctx SpecContext) {
			w := f.watch(ctx, f.prefix, f.revision(ctx))
			k, keep := f.key("expiring"), f.key("kept")
			rev, err := f.store.Create(ctx, k, []byte("v"), spec.CreateOptions{TTL: ttl})
			Expect(err).NotTo(HaveOccurred(), "Create with a TTL")
			f.expectValue(ctx, k, "v", rev, rev)
			kept := f.create(ctx, keep, "w")

			Eventually(ctx, func() error {
				_, err := f.store.Get(ctx, k)
				return err
			}).WithTimeout(waitTimeout).WithPolling(50*time.Millisecond).Should(MatchError(spec.ErrNotFound), "the key must expire")
			Eventually(ctx, func() []spec.Event {
				var deletes []spec.Event
				for _, ev := range w.Events() {
					if ev.Type == spec.EventDeleted {
						deletes = append(deletes, ev)
					}
				}
				return deletes
			}).WithTimeout(waitTimeout).Should(ConsistOf(Satisfy(func(ev spec.Event) bool {
				return ev.KV.Key == k && ev.Revision() > kept && ev.PrevKV != nil && string(ev.PrevKV.Value) == "v" && ev.PrevKV.ModRevision == rev
			})), "one Deleted event of the expired key, with its last state, after the later write")
			Expect(f.revision(ctx)).To(BeNumerically(">", kept), "the expiry commits at a new revision")
			f.expectValue(ctx, keep, "w", kept, kept)
		}, SpecTimeout(specTimeout))

		It("drops the TTL of a key that is updated", harness.Labels(spec.CapStoreTTL, harness.LabelSlow), func(ctx SpecContext) {
			expiring, updated := f.key("expiring"), f.key("updated")
			_, err := f.store.Create(ctx, expiring, []byte("v"), spec.CreateOptions{TTL: ttl})
			Expect(err).NotTo(HaveOccurred(), "Create with a TTL")
			created, err := f.store.Create(ctx, updated, []byte("v"), spec.CreateOptions{TTL: ttl})
			Expect(err).NotTo(HaveOccurred(), "Create with a TTL")
			rev := f.update(ctx, updated, "w", created)

			Eventually(ctx, func() error {
				_, err := f.store.Get(ctx, expiring)
				return err
			}).WithTimeout(waitTimeout).WithPolling(50*time.Millisecond).Should(MatchError(spec.ErrNotFound), "the key with the same TTL must expire")
			Consistently(ctx, func() error {
				_, err := f.store.Get(ctx, updated)
				return err
			}).WithTimeout(3*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "the updated key must not expire")
			f.expectValue(ctx, updated, "w", created, rev)
		}, SpecTimeout(specTimeout))
	})
}
