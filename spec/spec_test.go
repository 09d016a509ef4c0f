package spec_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

func TestValidateKey(t *testing.T) {
	cases := []struct {
		name string
		key  string
		ok   bool
	}{
		{"absolute", "/registry/pods/default/web-1", true},
		{"root", "/", true},
		{"empty", "", false},
		{"relative", "registry/pods", false},
		{"nul byte", "/a\x00b", false},
		{"invalid utf8", "/a\xffb", false},
		{"longest allowed", "/" + strings.Repeat("k", spec.MaxKeySize-1), true},
		{"too long", "/" + strings.Repeat("k", spec.MaxKeySize), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := spec.ValidateKey(tc.key)
			if tc.ok && err != nil {
				t.Fatalf("ValidateKey(%q) = %v, want nil", tc.key, err)
			}
			if !tc.ok && !errors.Is(err, spec.ErrInvalid) {
				t.Fatalf("ValidateKey(%q) = %v, want ErrInvalid", tc.key, err)
			}
		})
	}
}

func TestValidateValue(t *testing.T) {
	if err := spec.ValidateValue(nil); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("nil value: got %v, want ErrInvalid", err)
	}
	if err := spec.ValidateValue([]byte{}); err != nil {
		t.Errorf("empty value: got %v, want nil", err)
	}
	if err := spec.ValidateValue(make([]byte, spec.MaxValueSize)); err != nil {
		t.Errorf("max value: got %v, want nil", err)
	}
	if err := spec.ValidateValue(make([]byte, spec.MaxValueSize+1)); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("oversize value: got %v, want ErrInvalid", err)
	}
}

func TestDirPrefix(t *testing.T) {
	cases := map[string]string{"/a": "/a/", "/a/": "/a/", "/": "/", "/a/b": "/a/b/"}
	for in, want := range cases {
		got, err := spec.DirPrefix(in)
		if err != nil || got != want {
			t.Errorf("DirPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := spec.DirPrefix("a"); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("DirPrefix(relative) = %v, want ErrInvalid", err)
	}
}

func TestValidateListOptions(t *testing.T) {
	if err := spec.ValidateListOptions(spec.ListOptions{Revision: -1}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("negative revision: %v", err)
	}
	if err := spec.ValidateListOptions(spec.ListOptions{Limit: -1}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("negative limit: %v", err)
	}
	if err := spec.ValidateListOptions(spec.ListOptions{Revision: 5, Limit: 10, After: "/x"}); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestCapability(t *testing.T) {
	if err := spec.CapStoreDurable.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := spec.CapStoreTTL.Area(); got != "store" {
		t.Errorf("Area() = %q", got)
	}
	for _, bad := range []spec.Capability{"", "store", ":x", "store:", "store:a b"} {
		if err := bad.Validate(); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("Capability(%q).Validate() = %v, want ErrInvalid", bad, err)
		}
	}
	caps := spec.Capabilities{spec.CapStoreTTL}
	if !caps.Has(spec.CapStoreTTL) || caps.Has(spec.CapStoreDurable) {
		t.Errorf("Has is wrong for %v", caps)
	}
}

func TestRegistry(t *testing.T) {
	newStore := func(context.Context, spec.StoreConfig) (spec.Store, error) { return nil, nil }
	r := spec.NewRegistry()
	if err := r.RegisterStore(spec.StorePlugin{Name: "b", New: newStore}); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterStore(spec.StorePlugin{Name: "a", New: newStore, Capabilities: spec.Capabilities{spec.CapStoreTTL}}); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterStore(spec.StorePlugin{Name: "a", New: newStore}); !errors.Is(err, spec.ErrAlreadyExists) {
		t.Errorf("duplicate: got %v, want ErrAlreadyExists", err)
	}
	if err := r.RegisterStore(spec.StorePlugin{Name: "c"}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("no factory: got %v, want ErrInvalid", err)
	}
	if err := r.RegisterStore(spec.StorePlugin{Name: "", New: newStore}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("no name: got %v, want ErrInvalid", err)
	}
	if err := r.RegisterStore(spec.StorePlugin{Name: "d", New: newStore, Capabilities: spec.Capabilities{"bad"}}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("bad capability: got %v, want ErrInvalid", err)
	}
	if got := r.StoreNames(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("StoreNames() = %v", got)
	}
	p, err := r.Store("a")
	if err != nil || !p.Capabilities.Has(spec.CapStoreTTL) {
		t.Errorf("Store(a) = %+v, %v", p, err)
	}
	if _, err := r.Store("zzz"); !errors.Is(err, spec.ErrNotFound) || !strings.Contains(err.Error(), "known: [a b]") {
		t.Errorf("Store(missing) = %v, want ErrNotFound listing the known names", err)
	}
	// The contracts are kept apart: a store name is not a runtime name.
	if _, err := r.Runtime("a"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Runtime(a) = %v, want ErrNotFound", err)
	}
}

func TestStatus(t *testing.T) {
	var ok *spec.Status
	if !ok.IsSuccess() || ok.IsRejected() || ok.Message() != "" {
		t.Error("nil status must be success")
	}
	s := spec.NewStatus(spec.Unschedulable, "Insufficient cpu", "Insufficient memory")
	if s.IsSuccess() || !s.IsRejected() || s.Message() != "Insufficient cpu, Insufficient memory" {
		t.Errorf("unexpected %+v", s)
	}
	if spec.AsStatus(nil) != nil || spec.AsStatus(errors.New("x")).Code != spec.Error {
		t.Error("AsStatus")
	}
	var cs spec.CycleState
	if _, err := cs.Read("k"); !errors.Is(err, spec.ErrNotFound) {
		t.Errorf("Read(missing) = %v", err)
	}
	cs.Write("k", 1)
	if v, err := cs.Read("k"); err != nil || v.(int) != 1 {
		t.Errorf("Read(k) = %v, %v", v, err)
	}
}

func TestValidateWrite(t *testing.T) {
	cases := []struct {
		name     string
		key      string
		value    []byte
		expected int64
		ok       bool
	}{
		{"valid", "/a", []byte("v"), 3, true},
		{"unconditional", "/a", []byte{}, 0, true},
		{"bad key", "a", []byte("v"), 0, false},
		{"nil value", "/a", nil, 0, false},
		{"negative revision", "/a", []byte("v"), -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := spec.ValidateWrite(tc.key, tc.value, tc.expected)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, spec.ErrInvalid)) {
				t.Errorf("ValidateWrite(%q, %v, %d) = %v", tc.key, tc.value, tc.expected, err)
			}
		})
	}
}
