package defaultbinder_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kubelab/kubelab/plugins/scheduler/defaultbinder"
	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestBind(t *testing.T) {
	h := &schedtest.Handle{}
	pl, err := defaultbinder.Plugin().New(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	b := pl.(spec.BindPlugin)
	if st := b.Bind(context.Background(), &spec.CycleState{}, spectest.MakePod().Name("p").Obj(), "n1"); !st.IsSuccess() {
		t.Fatalf("Bind: %v", st.Message())
	}
	if h.Bindings["p"] != "n1" {
		t.Errorf("bindings = %v, want p→n1", h.Bindings)
	}
	h.BindErr = errors.New("conflict")
	st := b.Bind(context.Background(), &spec.CycleState{}, spectest.MakePod().Name("q").Obj(), "n1")
	if st == nil || st.Code != spec.Error || !errors.Is(st.Err, h.BindErr) {
		t.Errorf("Bind with a failing handle = %+v, want an Error status wrapping the cause", st)
	}
	nh, err := defaultbinder.Plugin().New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := nh.(spec.BindPlugin).Bind(context.Background(), &spec.CycleState{}, spectest.MakePod().Name("r").Obj(), "n1"); st == nil || !errors.Is(st.Err, spec.ErrInvalid) {
		t.Errorf("Bind without a handle = %+v, want an Error wrapping ErrInvalid", st)
	}
}
