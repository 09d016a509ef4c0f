package main

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckFindsUndocumentedExports(t *testing.T) {
	got, err := Check("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g[strings.LastIndex(g, " ")+1:])
	}
	want := []string{"A", "Method", "T", "Undocumented"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("Check = %v, want names %v", got, want)
	}
}
