package store

import (
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/kubelab/kubelab/spec"
)

// op builds a porcupine operation of client c over [call, ret].
func op(c int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
}

func TestLinearizabilityModel(t *testing.T) {
	create := func(k int, v string) linInput { return linInput{kind: linCreate, key: k, value: v} }
	put := func(k int, v string) linInput { return linInput{kind: linPut, key: k, value: v} }
	cas := func(k int, v string, exp int64) linInput {
		return linInput{kind: linCAS, key: k, value: v, expected: exp}
	}
	get := func(k int) linInput { return linInput{kind: linGet, key: k} }
	del := func(k int, exp int64) linInput { return linInput{kind: linDelete, key: k, expected: exp} }
	list := linInput{kind: linList}
	wrote := func(rev int64) linOutput { return linOutput{rev: rev} }
	got := func(v string, c, m int64) linOutput { return linOutput{kv: linKey{true, v, c, m}} }
	failed := func(r linResult) linOutput { return linOutput{result: r} }
	listed := func(rev int64, keys ...linKey) linOutput {
		out := linOutput{rev: rev}
		copy(out.list[:], keys)
		return out
	}

	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"read your write", []porcupine.Operation{
			op(0, 0, 1, create(0, "a"), wrote(5)),
			op(0, 2, 3, get(0), got("a", 5, 5)),
		}, true},
		{"a completed create is visible", []porcupine.Operation{
			op(0, 0, 1, create(0, "a"), wrote(5)),
			op(1, 2, 3, get(0), failed(linNotFound)),
		}, false},
		{"revisions follow real time", []porcupine.Operation{
			op(0, 0, 1, create(0, "a"), wrote(5)),
			op(1, 2, 3, create(1, "b"), wrote(4)),
		}, false},
		{"revisions may have gaps", []porcupine.Operation{
			op(0, 0, 1, create(0, "a"), wrote(5)),
			op(1, 2, 3, create(1, "b"), wrote(50)),
		}, true},
		{"a stale read after a completed update", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 3, put(0, "v2"), wrote(4)),
			op(1, 4, 5, get(0), got("v1", 3, 3)),
		}, false},
		{"an old read concurrent with the update", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 5, put(0, "v2"), wrote(4)),
			op(1, 3, 4, get(0), got("v1", 3, 3)),
		}, true},
		{"compare-and-swap from the current revision succeeds", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 3, cas(0, "v2", 3), failed(linConflict)),
		}, false},
		{"compare-and-swap from a stale revision conflicts", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 3, put(0, "v2"), wrote(4)),
			op(1, 4, 5, cas(0, "v3", 3), wrote(6)),
		}, false},
		{"an update keeps the create revision", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 3, cas(0, "v2", 3), wrote(7)),
			op(0, 4, 5, get(0), got("v2", 3, 7)),
		}, true},
		{"delete returns the last state", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 3, del(0, 0), linOutput{rev: 4, kv: linKey{true, "v2", 3, 3}}),
		}, false},
		{"a list at a revision below a completed write", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(1, 2, 3, list, listed(2)),
		}, false},
		{"a write after a list commits above it", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(1, 2, 3, list, listed(9, linKey{true, "v1", 3, 3})),
			op(0, 4, 5, create(1, "w"), wrote(8)),
		}, false},
		{"a list sees every key", []porcupine.Operation{
			op(0, 0, 1, create(0, "v1"), wrote(3)),
			op(0, 2, 3, create(2, "w1"), wrote(4)),
			op(1, 4, 5, list, listed(4, linKey{true, "v1", 3, 3}, linKey{}, linKey{true, "w1", 4, 4})),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(linModel, tc.history); got != tc.ok {
				t.Errorf("linearizable = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestConsistentGenerations(t *testing.T) {
	for _, tc := range []struct {
		gens []int
		ok   bool
	}{
		{[]int{3, 3, 3}, true},
		{[]int{4, 4, 3}, true},
		{[]int{4, 3, 3}, true},
		{[]int{3, 4, 4}, false},
		{[]int{4, 3, 4}, false},
		{[]int{5, 4, 3}, false},
		{nil, true},
	} {
		if got := consistentGenerations(tc.gens); got != tc.ok {
			t.Errorf("consistentGenerations(%v) = %v, want %v", tc.gens, got, tc.ok)
		}
	}
}

func TestDisorderAndDuplicates(t *testing.T) {
	ev := func(key string, rev int64) spec.Event {
		return spec.Event{Type: spec.EventCreated, KV: spec.KeyValue{Key: key, ModRevision: rev}}
	}
	if d := disorder([]spec.Event{ev("/a", 1), ev("/b", 2), ev("/c", 2)}); d != nil {
		t.Errorf("disorder of an ordered stream: %v", d)
	}
	if d := disorder([]spec.Event{ev("/a", 2), ev("/b", 1)}); d == nil {
		t.Error("disorder missed a descending pair")
	}
	if d := duplicates([]spec.Event{ev("/a", 1), ev("/b", 2)}); d != nil {
		t.Errorf("duplicates of a unique stream: %v", d)
	}
	if d := duplicates([]spec.Event{ev("/a", 1), ev("/b", 2), ev("/a", 1)}); len(d) != 1 {
		t.Errorf("duplicates = %v, want one", d)
	}
}
