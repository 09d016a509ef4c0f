package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestKeyIndex(t *testing.T) {
	tests := []struct {
		name string
		n    int // distinct keys
		ops  int
	}{
		{"empty", 0, 0},
		{"one chunk", 50, 500},
		{"several chunks", 3000, 20000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			var x keyIndex
			ref := map[string]bool{}
			for i := range tc.ops {
				k := fmt.Sprintf("/k/%d", rng.IntN(tc.n))
				// Insert more than delete for the first half, then drain.
				if rng.IntN(4) < 3 == (i < tc.ops/2) {
					if !ref[k] {
						ref[k] = true
						x.Insert(&keyHistory{key: k})
					}
				} else {
					delete(ref, k)
					x.Delete(k)
				}
				if i%97 == 0 {
					checkIndex(t, &x, ref)
				}
			}
			checkIndex(t, &x, ref)
			x.Delete("/absent") // no-op
			checkIndex(t, &x, ref)
		})
	}
}

func checkIndex(t *testing.T, x *keyIndex, ref map[string]bool) {
	t.Helper()
	want := make([]string, 0, len(ref))
	for k := range ref {
		want = append(want, k)
	}
	slices.Sort(want)
	if x.Len() != len(want) {
		t.Fatalf("Len %d, want %d", x.Len(), len(want))
	}
	for _, c := range x.chunks {
		if len(c) == 0 || len(c) > maxChunk {
			t.Fatalf("chunk of %d entries", len(c))
		}
	}
	froms := []string{"", "/", "/k/5", "/k/50", "/z"}
	if len(want) > 0 {
		froms = append(froms, want[len(want)/2], want[len(want)-1])
	}
	for _, from := range froms {
		var got []string
		x.Ascend(from, func(h *keyHistory) bool { got = append(got, h.key); return true })
		i, _ := slices.BinarySearch(want, from)
		if !slices.Equal(got, want[i:]) {
			t.Fatalf("Ascend(%q): %d keys, want %d", from, len(got), len(want[i:]))
		}
	}
	n := 0
	x.Ascend("", func(*keyHistory) bool { n++; return n < 3 })
	if n != min(3, len(want)) {
		t.Fatalf("Ascend did not stop when told: %d calls", n)
	}
}
