package store

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// eventID names an event by what it changed, for spotting repeats.
func eventID(ev spec.Event) string {
	return fmt.Sprintf("%s %s @%d", ev.Type, ev.KV.Key, ev.Revision())
}

// duplicates returns the events that occur more than once in evs.
func duplicates(evs []spec.Event) []string {
	seen := map[string]int{}
	var dups []string
	for _, ev := range evs {
		id := eventID(ev)
		if seen[id]++; seen[id] == 2 {
			dups = append(dups, id)
		}
	}
	return dups
}

// disorder returns the first pair of consecutive events whose revisions
// descend, or nil.
func disorder(evs []spec.Event) []string {
	for i := 1; i < len(evs); i++ {
		if evs[i].Revision() < evs[i-1].Revision() {
			return []string{describeEvent(evs[i-1]), describeEvent(evs[i])}
		}
	}
	return nil
}

func describeWatch(t Target) {
	Describe("Store watch", func() {
		f := newFixture(t)

		It("delivers events in ascending revision order under concurrent writers", harness.Labels(CapWatchOrdered), func(ctx SpecContext) {
			from := f.revision(ctx)
			live := f.watch(ctx, f.prefix, 0)
			replay := f.watch(ctx, f.prefix, from)
			j := newJournal(f.store)
			Expect(j.churn(ctx, f.key("load"), 8, 40)).To(Succeed())
			barrier := f.create(ctx, f.key("barrier"), "b")
			for name, w := range map[string]*recorder{"live watch": live, "watch from a revision": replay} {
				evs := w.waitForRevision(ctx, barrier)
				Expect(disorder(evs)).To(BeEmpty(), "%s: events out of revision order", name)
				Expect(len(evs)).To(BeNumerically(">=", 8*40+1), "%s: every write must be delivered", name)
			}
		}, SpecTimeout(specTimeout))

		It("delivers no event twice, also to a watch resumed from the last revision it received", harness.Labels(CapWatchUnique), func(ctx SpecContext) {
			from := f.revision(ctx)
			whole := f.watch(ctx, f.prefix, from)
			first := f.watch(ctx, f.prefix, from)
			j := newJournal(f.store)
			Expect(j.churn(ctx, f.key("one"), 4, 20)).To(Succeed())

			By("stopping a watch and resuming it from the last revision it received")
			first.waitForRevision(ctx, j.last())
			first.stop()
			got := first.Events()
			Expect(got).NotTo(BeEmpty())
			Expect(j.churn(ctx, f.key("two"), 4, 20)).To(Succeed())
			resumed := f.watch(ctx, f.prefix, got[len(got)-1].Revision())
			Expect(j.churn(ctx, f.key("three"), 4, 20)).To(Succeed())
			barrier := f.create(ctx, f.key("barrier"), "b")

			all := whole.waitForRevision(ctx, barrier)
			Expect(duplicates(all)).To(BeEmpty(), "events delivered twice to one watch")
			joined := append(got, resumed.waitForRevision(ctx, barrier)...)
			Expect(duplicates(joined)).To(BeEmpty(), "events delivered twice across a stopped watch and its resumption")
		}, SpecTimeout(specTimeout))

		It("delivers each revision whole in one batch with the revision its write returned and the previous state", harness.Labels(CapWatchAtomic), func(ctx SpecContext) {
			from := f.revision(ctx)
			w := f.watch(ctx, f.prefix, from)
			j := newJournal(f.store)
			a, b := f.key("a"), f.key("b")
			steps := []func() (int64, error){
				func() (int64, error) { return j.create(ctx, a, "a1") },
				func() (int64, error) { return j.create(ctx, b, "b1") },
				func() (int64, error) { return j.update(ctx, a, "a2", 0) },
				func() (int64, error) { return j.update(ctx, a, "a3", j.modRevision(a)) },
				func() (int64, error) { return j.delete(ctx, b, 0) },
				func() (int64, error) { return j.create(ctx, b, "b2") },
				func() (int64, error) { return j.update(ctx, b, "b3", 0) },
				func() (int64, error) { return j.delete(ctx, a, j.modRevision(a)) },
			}
			for _, step := range steps {
				_, err := step()
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(j.churn(ctx, f.key("load"), 4, 30)).To(Succeed())
			barrier, err := j.create(ctx, f.key("barrier"), "b")
			Expect(err).NotTo(HaveOccurred())

			evs := w.waitForRevision(ctx, barrier)
			Expect(describeEvents(evs)).To(Equal(j.after(from)),
				"each event must carry the revision its write returned, the key's state and, for updates and deletes, its previous state")
			for _, ev := range evs {
				if ev.Type == spec.EventCreated {
					Expect(ev.PrevKV).To(BeNil(), "PrevKV of a create: %s", describeEvent(ev))
				}
			}
			batchOf := map[int64]int{}
			for i, batch := range w.Batches() {
				for _, ev := range batch {
					if n, seen := batchOf[ev.Revision()]; seen && n != i {
						Fail(fmt.Sprintf("revision %d split over batches %d and %d", ev.Revision(), n, i))
					}
					batchOf[ev.Revision()] = i
				}
			}
		}, SpecTimeout(specTimeout))

		It("replays exactly the events after any uncompacted revision", harness.Labels(CapWatchResumable), func(ctx SpecContext) {
			from := f.revision(ctx)
			j := newJournal(f.store)
			points := []int64{from}
			for i := range 6 {
				k := f.key(fmt.Sprintf("k%d", i%3))
				var rev int64
				var err error
				switch i / 3 {
				case 0:
					rev, err = j.create(ctx, k, "v1")
				default:
					rev, err = j.update(ctx, k, "v2", 0)
				}
				Expect(err).NotTo(HaveOccurred())
				points = append(points, rev)
			}
			Expect(j.churn(ctx, f.key("load"), 3, 12)).To(Succeed())
			for i := range 3 {
				rev, err := j.delete(ctx, f.key(fmt.Sprintf("k%d", i)), 0)
				Expect(err).NotTo(HaveOccurred())
				points = append(points, rev)
			}
			points = append(points, f.revision(ctx))

			watches := make([]*recorder, len(points))
			for i, p := range points {
				watches[i] = f.watch(ctx, f.prefix, p)
			}
			barrier, err := j.create(ctx, f.key("barrier"), "b")
			Expect(err).NotTo(HaveOccurred())
			for i, p := range points {
				Expect(describeEvents(watches[i].waitForRevision(ctx, barrier))).To(Equal(j.after(p)),
					"a watch after revision %d must replay exactly the events after it", p)
			}
		}, SpecTimeout(specTimeout))
	})
}
