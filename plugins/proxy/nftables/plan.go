package nftables

import (
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

// plan fills tx (new, from the table's knftables.Interface) with what turns
// the table from prev (what the last successful transaction installed; nil
// when unknown) into next. It does no I/O.
//
// With prev nil the transaction deletes and recreates the whole table, so
// that whatever an earlier process left is gone; conntrack keeps the
// translation of established connections, so they survive it. Otherwise it
// changes only what differs: chains whose rules changed are flushed and
// refilled, map and set elements are added and deleted one by one, and
// chains and sets that are gone are deleted last, after nothing refers to
// them. One Sync that changes one service therefore touches only that
// service's chains and elements.
func plan(tx *knftables.Transaction, prev, next *Ruleset) {
	tx.Add(&knftables.Table{})
	if prev == nil {
		tx.Delete(&knftables.Table{})
		tx.Add(&knftables.Table{})
		prev = &Ruleset{}
	}
	// 1. New objects (chains, sets, maps) exist before anything refers to
	// them.
	for _, name := range sortedKeys(next.Chains) {
		if _, ok := prev.Chains[name]; !ok {
			tx.Add(chainObject(name, next.Chains[name]))
		}
	}
	for _, name := range sortedKeys(next.Sets) {
		if _, ok := prev.Sets[name]; !ok {
			tx.Add(setObject(name, next.Sets[name]))
		}
	}
	for _, name := range sortedKeys(next.Maps) {
		if _, ok := prev.Maps[name]; !ok {
			tx.Add(&knftables.Map{Name: name, Type: next.Maps[name].Type})
		}
	}
	// 2. Elements that go away or change.
	for _, name := range sortedKeys(prev.Maps) {
		old, cur := prev.Maps[name].Elements, next.Maps[name].Elements
		for _, key := range sortedKeys(old) {
			if v, ok := cur[key]; !ok || v != old[key] {
				tx.Delete(&knftables.Element{Map: name, Key: splitKey(key)})
			}
		}
	}
	for _, name := range sortedKeys(prev.Sets) {
		cur := next.Sets[name].Elements
		for _, el := range prev.Sets[name].Elements {
			if _, ok := next.Sets[name]; ok && !slices.Contains(cur, el) {
				tx.Delete(&knftables.Element{Set: name, Key: splitKey(el)})
			}
		}
	}
	// 3. Rules of new and changed chains.
	for _, name := range sortedKeys(next.Chains) {
		old, existed := prev.Chains[name]
		c := next.Chains[name]
		if existed && slices.Equal(old.Rules, c.Rules) {
			continue
		}
		if existed {
			tx.Flush(&knftables.Chain{Name: name})
		}
		for _, r := range c.Rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
	// 4. Elements that are new or changed.
	for _, name := range sortedKeys(next.Maps) {
		old, cur := prev.Maps[name].Elements, next.Maps[name].Elements
		for _, key := range sortedKeys(cur) {
			if v, ok := old[key]; !ok || v != cur[key] {
				tx.Add(&knftables.Element{Map: name, Key: splitKey(key), Value: []string{cur[key]}})
			}
		}
	}
	for _, name := range sortedKeys(next.Sets) {
		for _, el := range next.Sets[name].Elements {
			if !slices.Contains(prev.Sets[name].Elements, el) {
				tx.Add(&knftables.Element{Set: name, Key: splitKey(el)})
			}
		}
	}
	// 5. Objects that are gone: chains first (flushed, so that no jump to
	// another stale chain remains), then sets and maps they used.
	var staleChains []string
	for _, name := range sortedKeys(prev.Chains) {
		if _, ok := next.Chains[name]; !ok {
			staleChains = append(staleChains, name)
			tx.Flush(&knftables.Chain{Name: name})
		}
	}
	for _, name := range staleChains {
		tx.Delete(&knftables.Chain{Name: name})
	}
	for _, name := range sortedKeys(prev.Sets) {
		if _, ok := next.Sets[name]; !ok {
			tx.Delete(&knftables.Set{Name: name})
		}
	}
	for _, name := range sortedKeys(prev.Maps) {
		if _, ok := next.Maps[name]; !ok {
			tx.Delete(&knftables.Map{Name: name})
		}
	}
}

func chainObject(name string, c Chain) *knftables.Chain {
	ch := &knftables.Chain{Name: name}
	if c.Hook != "" {
		ch.Type = knftables.PtrTo(knftables.BaseChainType(c.Type))
		ch.Hook = knftables.PtrTo(knftables.BaseChainHook(c.Hook))
		ch.Priority = knftables.PtrTo(knftables.BaseChainPriority(c.Priority))
	}
	return ch
}

func setObject(name string, s Set) *knftables.Set {
	set := &knftables.Set{Name: name, Type: s.Type}
	if s.Dynamic {
		set.Flags = []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}
		set.Timeout = knftables.PtrTo(s.Timeout)
	}
	return set
}

func splitKey(key string) []string { return strings.Split(key, " . ") }

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
