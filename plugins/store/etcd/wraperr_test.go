package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/kubelab/kubelab/spec"
)

// TestWrapErrSentinels: etcd's own errors become the contract's sentinels
// by their type, never by their text.
func TestWrapErrSentinels(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want []error
		not  []error
	}{
		{"request too large", rpctypes.ErrRequestTooLarge, []error{spec.ErrValueTooLarge, spec.ErrInvalid, rpctypes.ErrRequestTooLarge}, nil},
		{"compacted", rpctypes.ErrCompacted, []error{spec.ErrCompacted}, []error{spec.ErrValueTooLarge}},
		{"future revision", rpctypes.ErrFutureRev, []error{spec.ErrFutureRevision}, nil},
		{"other, mentioning size", fmt.Errorf("request exceeds the limit"), nil, []error{spec.ErrValueTooLarge, spec.ErrInvalid}},
	}
	s := &Store{}
	for _, c := range cases {
		got := s.wrapErr(context.Background(), "put \"/k\"", c.err)
		for _, w := range c.want {
			if !errors.Is(got, w) {
				t.Errorf("%s: %v does not wrap %v", c.name, got, w)
			}
		}
		for _, n := range c.not {
			if errors.Is(got, n) {
				t.Errorf("%s: %v wraps %v", c.name, got, n)
			}
		}
	}
}
