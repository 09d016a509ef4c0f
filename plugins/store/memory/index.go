package memory

import (
	"slices"
	"strings"
)

// maxChunk is the most entries one chunk of a keyIndex holds before it is
// split in two. Chunks of a few hundred pointers keep inserts (a memmove
// inside one chunk) and scans (sequential memory) cheap at any size.
const maxChunk = 256

// keyIndex is the ordered set of every key that has history in the store,
// live or deleted-but-not-yet-compacted, so that List can walk a prefix in
// byte order. It is a two-level B-tree: a sorted list of sorted chunks, each
// non-empty, every key of chunks[i] below every key of chunks[i+1].
//
// A keyIndex is not safe for concurrent use; the Store's mutex guards it.
type keyIndex struct {
	chunks [][]*keyHistory
	n      int
}

// Len returns the number of keys in the index.
func (x *keyIndex) Len() int { return x.n }

// chunkFor returns the index of the chunk where key is or would be inserted:
// the first chunk whose last key is >= key, or the last chunk.
func (x *keyIndex) chunkFor(key string) int {
	i, _ := slices.BinarySearchFunc(x.chunks, key, func(c []*keyHistory, k string) int {
		return strings.Compare(c[len(c)-1].key, k)
	})
	if i == len(x.chunks) {
		i--
	}
	return i
}

func searchChunk(c []*keyHistory, key string) (int, bool) {
	return slices.BinarySearchFunc(c, key, func(h *keyHistory, k string) int {
		return strings.Compare(h.key, k)
	})
}

// Insert adds h under h.key. The key must not be in the index.
func (x *keyIndex) Insert(h *keyHistory) {
	x.n++
	if len(x.chunks) == 0 {
		x.chunks = append(x.chunks, append(make([]*keyHistory, 0, 16), h))
		return
	}
	ci := x.chunkFor(h.key)
	c := x.chunks[ci]
	j, _ := searchChunk(c, h.key)
	c = slices.Insert(c, j, h)
	if len(c) <= maxChunk {
		x.chunks[ci] = c
		return
	}
	half := len(c) / 2
	right := make([]*keyHistory, len(c)-half, maxChunk)
	copy(right, c[half:])
	clear(c[half:])
	x.chunks[ci] = c[:half]
	x.chunks = slices.Insert(x.chunks, ci+1, right)
}

// Delete removes key from the index; it does nothing if key is absent.
func (x *keyIndex) Delete(key string) {
	if len(x.chunks) == 0 {
		return
	}
	ci := x.chunkFor(key)
	c := x.chunks[ci]
	j, found := searchChunk(c, key)
	if !found {
		return
	}
	x.n--
	c = slices.Delete(c, j, j+1) // zeroes the vacated slot
	switch {
	case len(c) == 0:
		x.chunks = slices.Delete(x.chunks, ci, ci+1)
	case len(c) < maxChunk/4 && ci+1 < len(x.chunks) && len(c)+len(x.chunks[ci+1]) <= maxChunk/2:
		// Merge a small chunk into its successor so deletes cannot leave
		// the index as a long list of tiny chunks.
		x.chunks[ci] = append(c, x.chunks[ci+1]...)
		x.chunks = slices.Delete(x.chunks, ci+1, ci+2)
	default:
		x.chunks[ci] = c
	}
}

// Ascend calls fn for every key >= from, in ascending byte order, until fn
// returns false. The index must not be modified during the walk.
func (x *keyIndex) Ascend(from string, fn func(*keyHistory) bool) {
	if len(x.chunks) == 0 {
		return
	}
	ci := x.chunkFor(from)
	j, _ := searchChunk(x.chunks[ci], from)
	for ; ci < len(x.chunks); ci, j = ci+1, 0 {
		for _, h := range x.chunks[ci][j:] {
			if !fn(h) {
				return
			}
		}
	}
}
