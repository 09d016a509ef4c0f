package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubelab/kubelab/spec"
)

// TestStoreErr: store errors map to API status codes by their sentinel,
// never by their text.
func TestStoreErr(t *testing.T) {
	r := &Resource{Name: "configmaps", Version: "v1", Kind: "ConfigMap", Namespaced: true}
	cases := []struct {
		name string
		err  error
		code int32
	}{
		{"value too large", spec.ValidateValue(make([]byte, spec.MaxValueSize+1)), http.StatusRequestEntityTooLarge},
		{"value too large from a server", fmt.Errorf("etcd store: put: %w: etcdserver: request is too large", spec.ErrValueTooLarge), http.StatusRequestEntityTooLarge},
		{"key too long: invalid, not too large", spec.ValidateKey("/" + strings.Repeat("k", spec.MaxKeySize)), http.StatusBadRequest},
		{"invalid whose text says exceeds", fmt.Errorf("TTL 1h exceeds the limit: %w", spec.ErrInvalid), http.StatusBadRequest},
		{"not found", fmt.Errorf("key %q: %w", "/k", spec.ErrNotFound), http.StatusNotFound},
		{"already exists", spec.ErrAlreadyExists, http.StatusConflict},
		{"conflict", spec.ErrConflict, http.StatusConflict},
		{"compacted", spec.ErrCompacted, http.StatusGone},
		{"future revision", spec.ErrFutureRevision, http.StatusGatewayTimeout},
		{"deadline", context.DeadlineExceeded, http.StatusGatewayTimeout},
		{"no sentinel, saying exceeds", errors.New("request exceeds what the disk holds"), http.StatusInternalServerError},
		{"a status error passes", apierrors.NewForbidden(r.GroupResource(), "x", errors.New("no")), http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var st apierrors.APIStatus
			got := storeErr(r, "x", c.err)
			if !errors.As(got, &st) {
				t.Fatalf("storeErr(%v) = %v, not a status error", c.err, got)
			}
			if st.Status().Code != c.code {
				t.Fatalf("storeErr(%v) = %d %s, want %d", c.err, st.Status().Code, got, c.code)
			}
		})
	}
}
