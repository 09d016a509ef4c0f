package controllers

import (
	"slices"
	"testing"
)

func TestSelect(t *testing.T) {
	all := []Initializer{{Name: "a"}, {Name: "b-controller", Aliases: []string{"b"}}, {Name: "off", DisabledByDefault: true}}
	for _, tc := range []struct {
		name      string
		selection []string
		want      []string
		wantErr   bool
	}{
		{"star enables the default ones", []string{"*"}, []string{"a", "b-controller"}, false},
		{"star minus one by alias", []string{"*", "-b"}, []string{"a"}, false},
		{"star minus one by name", []string{"*", "-b-controller"}, []string{"a"}, false},
		{"minus before star wins", []string{"-a", "*"}, []string{"b-controller"}, false},
		{"named only, by alias", []string{"b"}, []string{"b-controller"}, false},
		{"alias and name decide the same controller, first wins", []string{"-b", "b-controller", "*"}, []string{"a"}, false},
		{"disabled by default needs its name", []string{"*", "off"}, []string{"a", "b-controller", "off"}, false},
		{"first entry wins", []string{"a", "-a"}, []string{"a"}, false},
		{"nothing", []string{"-a"}, nil, false},
		{"unknown name", []string{"*", "nope"}, nil, true},
		{"unknown negated name", []string{"-nope"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(all, tc.selection)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			var names []string
			for _, in := range got {
				names = append(names, in.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("Select = %v, want %v", names, tc.want)
			}
		})
	}
}
