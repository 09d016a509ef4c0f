package store

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// race runs fn(i) for i in [0, n) in n goroutines released at once and
// returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// tally counts nil errors, errors wrapping want, and other errors (returned).
func tally(errs []error, want error) (ok, expected int, others []error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, want):
			expected++
		default:
			others = append(others, err)
		}
	}
	return ok, expected, others
}

func describeConcurrency(t Target) {
	Describe("Store concurrency", func() {
		f := newFixture(t)

		It("loses no update when many goroutines compare-and-swap shared counters", harness.Labels(CapConcurrency), func(ctx SpecContext) {
			const counters, workers, increments = 3, 16, 25
			keys := make([]string, counters)
			for i := range keys {
				keys[i] = f.key(fmt.Sprintf("counter-%d", i))
				f.create(ctx, keys[i], "0")
			}
			type success struct {
				key      string
				expected int64
				value    int
			}
			var mu sync.Mutex
			var successes []success
			errs := race(workers, func(w int) error {
				for i := range increments {
					key := keys[(w+i)%counters]
					// Retries are bounded by the spec's timeout, through ctx.
					for {
						cur, err := f.store.Get(ctx, key)
						if err != nil {
							return fmt.Errorf("Get(%q): %w", key, err)
						}
						n, err := strconv.Atoi(string(cur.Value))
						if err != nil {
							return fmt.Errorf("counter %q holds %q", key, cur.Value)
						}
						_, err = f.store.Update(ctx, key, []byte(strconv.Itoa(n+1)), cur.ModRevision)
						if errors.Is(err, spec.ErrConflict) {
							continue
						}
						if err != nil {
							return fmt.Errorf("Update(%q, expected %d): %w", key, cur.ModRevision, err)
						}
						mu.Lock()
						successes = append(successes, success{key, cur.ModRevision, n + 1})
						mu.Unlock()
						break
					}
				}
				return nil
			})
			for _, err := range errs {
				Expect(err).NotTo(HaveOccurred())
			}
			total := 0
			for _, k := range keys {
				n, err := strconv.Atoi(string(f.get(ctx, k).Value))
				Expect(err).NotTo(HaveOccurred())
				total += n
			}
			Expect(total).To(Equal(workers*increments), "the counters must add up to every successful increment")
			seen := map[string]bool{}
			for _, s := range successes {
				id := fmt.Sprintf("%s expecting %d", s.key, s.expected)
				Expect(seen[id]).To(BeFalse(), "two compare-and-swaps of %s both succeeded", id)
				seen[id] = true
			}
		}, SpecTimeout(specTimeout))

		It("makes racing compare-and-swap increments of one key conflict, and the key counts exactly the successful ones", harness.Labels(CapConcurrency), func(ctx SpecContext) {
			const workers, rounds = 8, 25
			k := f.key("raced")
			f.create(ctx, k, "0")
			successes, conflicts := 0, 0
			for round := range rounds {
				// Every worker reads before any writes (the barrier), so
				// that the increments really race, whatever the store's
				// latency: at most one of them can win.
				var read sync.WaitGroup
				read.Add(workers)
				ok, lost, others := tally(race(workers, func(int) error {
					cur, err := f.store.Get(ctx, k)
					read.Done()
					if err != nil {
						return fmt.Errorf("Get(%q): %w", k, err)
					}
					n, err := strconv.Atoi(string(cur.Value))
					if err != nil {
						return fmt.Errorf("key %q holds %q", k, cur.Value)
					}
					read.Wait()
					_, err = f.store.Update(ctx, k, []byte(strconv.Itoa(n+1)), cur.ModRevision)
					return err
				}), spec.ErrConflict)
				Expect(others).To(BeEmpty(), "round %d", round)
				Expect(ok).To(Equal(1), "round %d: %d workers read the same revision, so exactly one compare-and-swap must succeed", round, workers)
				successes += ok
				conflicts += lost
			}
			Expect(conflicts).To(Equal(rounds*(workers-1)), "the losing compare-and-swaps must report ErrConflict")
			n, err := strconv.Atoi(string(f.get(ctx, k).Value))
			Expect(err).NotTo(HaveOccurred())
			Expect(n).To(Equal(successes), "the key must count every successful increment and no other")
		}, SpecTimeout(specTimeout))

		It("lets exactly one of many racing creates, compare-and-swaps or deletes of a key succeed", harness.Labels(CapConcurrency), func(ctx SpecContext) {
			const racers, rounds = 16, 20
			for round := range rounds {
				k := f.key(fmt.Sprintf("contended-%d", round))
				ok, lost, others := tally(race(racers, func(i int) error {
					_, err := f.store.Create(ctx, k, []byte(strconv.Itoa(i)), spec.CreateOptions{})
					return err
				}), spec.ErrAlreadyExists)
				Expect(others).To(BeEmpty())
				Expect([]int{ok, lost}).To(Equal([]int{1, racers - 1}), "round %d: successful and ErrAlreadyExists creates", round)

				cur := f.get(ctx, k)
				ok, lost, others = tally(race(racers, func(i int) error {
					_, err := f.store.Update(ctx, k, []byte("cas-"+strconv.Itoa(i)), cur.ModRevision)
					return err
				}), spec.ErrConflict)
				Expect(others).To(BeEmpty())
				Expect([]int{ok, lost}).To(Equal([]int{1, racers - 1}), "round %d: successful and ErrConflict compare-and-swaps", round)

				ok, lost, others = tally(race(racers, func(i int) error {
					_, _, err := f.store.Delete(ctx, k, 0)
					return err
				}), spec.ErrNotFound)
				Expect(others).To(BeEmpty())
				Expect([]int{ok, lost}).To(Equal([]int{1, racers - 1}), "round %d: successful and ErrNotFound deletes", round)
				f.expectMissing(ctx, k)
			}
		}, SpecTimeout(specTimeout))
	})
}
