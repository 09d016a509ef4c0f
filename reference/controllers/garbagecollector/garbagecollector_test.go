package garbagecollector

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestDecide(t *testing.T) {
	now := metav1.Now()
	obj := func(fins []string, deleting bool, owners ...types.UID) *metav1.ObjectMeta {
		m := &metav1.ObjectMeta{Name: "d", Finalizers: fins}
		if deleting {
			m.DeletionTimestamp = &now
		}
		for _, u := range owners {
			m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{UID: u, Name: string(u)})
		}
		return m
	}
	cases := []struct {
		name   string
		dep    *metav1.ObjectMeta
		states map[types.UID]OwnerState
		want   Action
	}{
		{name: "no owners: kept", dep: obj(nil, false), want: Action{}},
		{name: "owner alive: kept", dep: obj(nil, false, "a"), states: map[types.UID]OwnerState{"a": Solid}, want: Action{}},
		{name: "owner unknown: kept", dep: obj(nil, false, "a"), want: Action{}},
		{name: "only owner gone: deleted in the background", dep: obj(nil, false, "a"), states: map[types.UID]OwnerState{"a": Dangling},
			want: Action{Delete: true, Policy: metav1.DeletePropagationBackground}},
		{name: "every owner gone or waiting: deleted", dep: obj(nil, false, "a", "b"), states: map[types.UID]OwnerState{"a": Dangling, "b": Waiting},
			want: Action{Delete: true, Policy: metav1.DeletePropagationBackground}},
		{name: "one owner alive: references to the others removed", dep: obj(nil, false, "a", "b", "c"), states: map[types.UID]OwnerState{"a": Dangling, "b": Solid, "c": Waiting},
			want: Action{RemoveOwners: []types.UID{"a", "c"}}},
		{name: "dependent's orphan finalizer: Orphan", dep: obj([]string{metav1.FinalizerOrphanDependents}, false, "a"), states: map[types.UID]OwnerState{"a": Dangling},
			want: Action{Delete: true, Policy: metav1.DeletePropagationOrphan}},
		{name: "dependent's foreground finalizer: Foreground", dep: obj([]string{metav1.FinalizerDeleteDependents}, false, "a"), states: map[types.UID]OwnerState{"a": Dangling},
			want: Action{Delete: true, Policy: metav1.DeletePropagationForeground}},
		{name: "already being deleted: left alone", dep: obj(nil, true, "a"), states: map[types.UID]OwnerState{"a": Dangling}, want: Action{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Decide(c.dep, c.states); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Decide = %+v, want %+v", got, c.want)
			}
		})
	}
}
