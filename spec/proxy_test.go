package spec_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

func TestServicePortUsableEndpoints(t *testing.T) {
	ep := func(last byte, node string, ready, serving, terminating bool) spec.Endpoint {
		return spec.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 0, 0, last}), Port: 80, NodeName: node,
			Ready: ready, Serving: serving, Terminating: terminating}
	}
	readyA := ep(1, "a", true, true, false)
	readyB := ep(2, "b", true, true, false)
	unready := ep(3, "a", false, false, false)
	termServingA := ep(4, "a", false, true, true)
	termServingB := ep(5, "b", false, true, true)
	termDead := ep(6, "a", false, false, true)
	noNode := ep(7, "", true, true, false)
	addrs := func(eps []spec.Endpoint) []byte {
		var out []byte
		for _, e := range eps {
			out = append(out, e.Addr.As4()[3])
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		eps          []spec.Endpoint
		itp, etp     spec.TrafficPolicy
		wantInternal []byte
		wantExternal []byte
	}{
		{name: "ready only", eps: []spec.Endpoint{readyA, unready, termServingA, readyB}, wantInternal: []byte{1, 2}, wantExternal: []byte{1, 2}},
		{name: "terminating fallback when none ready", eps: []spec.Endpoint{unready, termServingA, termDead, termServingB}, wantInternal: []byte{4, 5}, wantExternal: []byte{4, 5}},
		{name: "nothing usable", eps: []spec.Endpoint{unready, termDead}},
		{name: "no endpoints"},
		{name: "internal local", eps: []spec.Endpoint{readyA, readyB, noNode}, itp: spec.TrafficPolicyLocal, wantInternal: []byte{1}, wantExternal: []byte{1, 2, 7}},
		{name: "external local", eps: []spec.Endpoint{readyA, readyB}, etp: spec.TrafficPolicyLocal, wantInternal: []byte{1, 2}, wantExternal: []byte{1}},
		{name: "local fallback is per node", eps: []spec.Endpoint{readyB, termServingA}, itp: spec.TrafficPolicyLocal, etp: spec.TrafficPolicyLocal, wantInternal: []byte{4}, wantExternal: []byte{4}},
		{name: "local with nothing on the node", eps: []spec.Endpoint{readyB, termServingB}, itp: spec.TrafficPolicyLocal, wantExternal: []byte{2}},
		{name: "a ready endpoint that is terminating is not ready", eps: []spec.Endpoint{ep(8, "a", true, true, true), unready}, wantInternal: []byte{8}, wantExternal: []byte{8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := spec.ServicePort{Endpoints: tc.eps, InternalTrafficPolicy: tc.itp, ExternalTrafficPolicy: tc.etp}
			if got := addrs(sp.InternalEndpoints("a")); !slices.Equal(got, tc.wantInternal) {
				t.Errorf("InternalEndpoints = %v, want %v", got, tc.wantInternal)
			}
			if got := addrs(sp.ExternalEndpoints("a")); !slices.Equal(got, tc.wantExternal) {
				t.Errorf("ExternalEndpoints = %v, want %v", got, tc.wantExternal)
			}
		})
	}
}

func TestPartialSyncError(t *testing.T) {
	var err error = &spec.PartialSyncError{Skipped: []spec.SkippedServicePort{
		{Namespace: "ns", Name: "web", PortName: "http", Reason: "address fd00::1"}, {Reason: "node address fd00::2"}}}
	wrapped := fmt.Errorf("sync: %w", err)
	if !errors.Is(wrapped, spec.ErrUnsupported) {
		t.Errorf("PartialSyncError is not ErrUnsupported")
	}
	var p *spec.PartialSyncError
	if !errors.As(wrapped, &p) || len(p.Skipped) != 2 {
		t.Errorf("errors.As found %v", p)
	}
	if want := "proxy skipped ns/web:http: address fd00::1; node address fd00::2: unsupported by this plugin"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
