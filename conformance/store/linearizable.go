package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// The shape of the linearizability spec: rounds of randomized histories,
// each on a fresh directory of linKeys keys.
const (
	linRounds       = 4
	linClients      = 6
	linOpsPerClient = 60
	linKeys         = 3
	linCheckTimeout = time.Minute
)

// linKind is an operation of the linearizability model.
type linKind int

const (
	linGet linKind = iota
	linList
	linCreate
	linPut // Update with expected revision 0
	linCAS // Update with an expected revision
	linDelete
)

func (k linKind) String() string {
	return [...]string{"get", "list", "create", "put", "cas", "delete"}[k]
}

// linInput is one operation: a kind, the key's index, and the value and
// expected revision of writes.
type linInput struct {
	kind     linKind
	key      int
	value    string
	expected int64
}

// linResult classifies how an operation ended.
type linResult int

const (
	linOK linResult = iota
	linNotFound
	linExists
	linConflict
)

func (r linResult) String() string {
	return [...]string{"ok", "not found", "already exists", "conflict"}[r]
}

// linKey is one key's state in the model; the zero value is a missing key.
type linKey struct {
	exists         bool
	value          string
	createRevision int64
	modRevision    int64
}

func (k linKey) String() string {
	if !k.exists {
		return "-"
	}
	return fmt.Sprintf("%s c%d@%d", k.value, k.createRevision, k.modRevision)
}

// linOutput is what an operation returned: its result, the revision of a
// write or a list, the key read by a get or removed by a delete, and the
// keys read by a list.
type linOutput struct {
	result linResult
	rev    int64
	kv     linKey
	list   [linKeys]linKey
}

// linState is the model's state: every key, and a revision that every later
// write must exceed (the last write's, or the last list's). It is a value, so
// porcupine can compare states with ==.
type linState struct {
	rev  int64
	keys [linKeys]linKey
}

// linStep is the sequential specification of a store, restricted to the
// operations of the spec.
func linStep(state, input, output any) (bool, any) {
	s, in, out := state.(linState), input.(linInput), output.(linOutput)
	cur := s.keys[in.key]
	switch in.kind {
	case linGet:
		if !cur.exists {
			return out.result == linNotFound, s
		}
		return out.result == linOK && out.kv == cur, s
	case linList:
		// A list at revision R reflects every write up to R, and every
		// write after it in the linearization commits above R.
		if out.result != linOK || out.rev < s.rev || out.list != s.keys {
			return false, s
		}
		s.rev = out.rev
		return true, s
	case linCreate:
		if cur.exists {
			return out.result == linExists, s
		}
		if out.result != linOK || out.rev <= s.rev {
			return false, s
		}
		s.keys[in.key] = linKey{true, in.value, out.rev, out.rev}
	case linPut, linCAS:
		if !cur.exists {
			return out.result == linNotFound, s
		}
		if in.expected != 0 && in.expected != cur.modRevision {
			return out.result == linConflict, s
		}
		if out.result != linOK || out.rev <= s.rev {
			return false, s
		}
		s.keys[in.key] = linKey{true, in.value, cur.createRevision, out.rev}
	case linDelete:
		if !cur.exists {
			return out.result == linNotFound, s
		}
		if in.expected != 0 && in.expected != cur.modRevision {
			return out.result == linConflict, s
		}
		if out.result != linOK || out.rev <= s.rev || out.kv != cur {
			return false, s
		}
		s.keys[in.key] = linKey{}
	default:
		return false, s
	}
	s.rev = out.rev
	return true, s
}

// linModel is the porcupine model of a store over linKeys keys.
var linModel = porcupine.Model{
	Init: func() any { return linState{} },
	Step: linStep,
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		var call string
		switch in.kind {
		case linGet:
			call = fmt.Sprintf("get(k%d)", in.key)
		case linList:
			call = "list()"
		case linCreate, linPut:
			call = fmt.Sprintf("%s(k%d, %s)", in.kind, in.key, in.value)
		case linCAS:
			call = fmt.Sprintf("cas(k%d, %s, expect %d)", in.key, in.value, in.expected)
		case linDelete:
			call = fmt.Sprintf("delete(k%d, expect %d)", in.key, in.expected)
		}
		if out.result != linOK {
			return call + " -> " + out.result.String()
		}
		switch in.kind {
		case linGet:
			return fmt.Sprintf("%s -> %v", call, out.kv)
		case linList:
			return fmt.Sprintf("%s -> @%d %v", call, out.rev, out.list)
		case linDelete:
			return fmt.Sprintf("%s -> @%d was %v", call, out.rev, out.kv)
		}
		return fmt.Sprintf("%s -> @%d", call, out.rev)
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		parts := make([]string, 0, linKeys)
		for i, k := range s.keys {
			parts = append(parts, fmt.Sprintf("k%d=%v", i, k))
		}
		return fmt.Sprintf("rev>%d %s", s.rev, strings.Join(parts, " "))
	},
}

// linClient runs one client's random operations against s and records them.
type linClient struct {
	id    int
	s     spec.Store
	keys  [linKeys]string
	dir   string
	rng   *rand.Rand
	seen  [linKeys]int64 // last mod revision this client saw per key
	start time.Time
}

func (c *linClient) next(seq int) linInput {
	in := linInput{key: c.rng.IntN(linKeys), value: fmt.Sprintf("c%d.%d", c.id, seq)}
	switch p := c.rng.IntN(100); {
	case p < 25:
		in.kind = linGet
	case p < 35:
		in.kind = linList
	case p < 50:
		in.kind = linCreate
	case p < 62:
		in.kind = linPut
	case p < 87:
		in.kind = linCAS
		in.expected = c.seen[in.key]
		if in.expected == 0 || c.rng.IntN(5) == 0 {
			in.expected = c.seen[c.rng.IntN(linKeys)] + int64(c.rng.IntN(2))
		}
		if in.expected == 0 {
			in.expected = 1
		}
	default:
		in.kind = linDelete
		if c.rng.IntN(2) == 0 {
			in.expected = c.seen[in.key]
		}
	}
	return in
}

// classify maps a store error to a model result; other errors are returned.
func classify(err error) (linResult, error) {
	switch {
	case err == nil:
		return linOK, nil
	case errors.Is(err, spec.ErrNotFound):
		return linNotFound, nil
	case errors.Is(err, spec.ErrAlreadyExists):
		return linExists, nil
	case errors.Is(err, spec.ErrConflict):
		return linConflict, nil
	}
	return 0, err
}

func toLinKey(kv spec.KeyValue) linKey {
	return linKey{true, string(kv.Value), kv.CreateRevision, kv.ModRevision}
}

// do performs in and returns the completed operation.
func (c *linClient) do(ctx context.Context, in linInput) (porcupine.Operation, error) {
	var out linOutput
	var err error
	key := c.keys[in.key]
	call := time.Since(c.start).Nanoseconds()
	switch in.kind {
	case linGet:
		var kv spec.KeyValue
		kv, err = c.s.Get(ctx, key)
		if err == nil {
			out.kv = toLinKey(kv)
		}
	case linList:
		var res spec.ListResult
		res, err = c.s.List(ctx, c.dir, spec.ListOptions{})
		if err == nil {
			out.rev = res.Revision
			for _, item := range res.Items {
				i := -1
				for j, k := range c.keys {
					if k == item.Key {
						i = j
					}
				}
				if i < 0 {
					return porcupine.Operation{}, fmt.Errorf("List(%q) returned the unknown key %q", c.dir, item.Key)
				}
				out.list[i] = toLinKey(item)
			}
		}
	case linCreate:
		out.rev, err = c.s.Create(ctx, key, []byte(in.value), spec.CreateOptions{})
	case linPut, linCAS:
		out.rev, err = c.s.Update(ctx, key, []byte(in.value), in.expected)
	case linDelete:
		var prev spec.KeyValue
		prev, out.rev, err = c.s.Delete(ctx, key, in.expected)
		if err == nil {
			out.kv = toLinKey(prev)
		}
	}
	ret := time.Since(c.start).Nanoseconds()
	res, err := classify(err)
	if err != nil {
		return porcupine.Operation{}, fmt.Errorf("%s of %q: %w", in.kind, key, err)
	}
	out.result = res
	// Remember what this client saw, to aim its compare-and-swaps.
	switch {
	case in.kind == linList:
		for i, k := range out.list {
			c.seen[i] = k.modRevision
		}
	case in.kind == linGet && res == linOK:
		c.seen[in.key] = out.kv.modRevision
	case in.kind == linDelete && res == linOK:
		c.seen[in.key] = 0
	case res == linOK:
		c.seen[in.key] = out.rev
	}
	return porcupine.Operation{ClientId: c.id, Input: in, Call: call, Output: out, Return: ret}, nil
}

// linHistory runs linClients clients concurrently on dir and returns the
// history they recorded.
func linHistory(ctx context.Context, s spec.Store, dir string, seed uint64) ([]porcupine.Operation, error) {
	var keys [linKeys]string
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/k%d", dir, i)
	}
	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	errs := race(linClients, func(id int) error {
		c := &linClient{id: id, s: s, keys: keys, dir: dir, rng: rand.New(rand.NewPCG(seed, uint64(id))), start: start}
		for seq := range linOpsPerClient {
			op, err := c.do(ctx, c.next(seq))
			if err != nil {
				return fmt.Errorf("client %d: %w", id, err)
			}
			mu.Lock()
			history = append(history, op)
			mu.Unlock()
			// Let other clients in between operations, so that operations
			// overlap even on a store that answers in microseconds.
			runtime.Gosched()
		}
		return nil
	})
	return history, errors.Join(errs...)
}

// visualize writes porcupine's visualization of a history to a new file and
// returns its path.
func visualize(info porcupine.LinearizationInfo, target string, round int) (string, error) {
	dir, err := os.MkdirTemp("", "kubelab-linearizability-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-round-%d.html", target, round))
	return path, porcupine.VisualizePath(linModel, info, path)
}

func describeLinearizability(t Target) {
	Describe("Store linearizability", func() {
		f := newFixture(t)

		It("keeps randomized concurrent histories of get, list, create, update, compare-and-swap and delete linearizable", harness.Labels(CapLinearizable), func(ctx SpecContext) {
			seed := rand.Uint64()
			AddReportEntry("shape", fmt.Sprintf("%d rounds of %d clients x %d operations on %d keys, seed %d",
				linRounds, linClients, linOpsPerClient, linKeys, seed))
			for round := range linRounds {
				history, err := linHistory(ctx, f.store, f.key(fmt.Sprintf("round-%d", round)), seed+uint64(round))
				Expect(err).NotTo(HaveOccurred(), "round %d: every operation must succeed or fail with a sentinel error", round)
				result, info := porcupine.CheckOperationsVerbose(linModel, history, linCheckTimeout)
				switch result {
				case porcupine.Ok:
				case porcupine.Unknown:
					AddReportEntry("inconclusive", fmt.Sprintf("round %d: porcupine gave up after %v", round, linCheckTimeout))
				default:
					path, err := visualize(info, t.Name, round)
					if err != nil {
						path = fmt.Sprintf("(no visualization: %v)", err)
					}
					Fail(fmt.Sprintf("round %d (seed %d): the history of %d operations is not linearizable; visualization: %s",
						round, seed, len(history), path))
				}
			}
		}, SpecTimeout(5*time.Minute))
	})
}
