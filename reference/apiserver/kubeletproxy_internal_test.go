package apiserver

import (
	"net/http/httptest"
	"testing"
)

// The kubelet subresources are long-running, as upstream's: no in-flight
// slot, no request timeout (a `kubectl logs -f` or `exec -it` lasts).
func TestKubeletSubresourcesAreLongRunning(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/v1/namespaces/ns/pods/p/log":              true,
		"/api/v1/namespaces/ns/pods/p/exec":             true,
		"/api/v1/namespaces/ns/pods/p/attach":           true,
		"/api/v1/namespaces/ns/pods/p/portforward":      true,
		"/api/v1/nodes/n/proxy":                         true,
		"/api/v1/nodes/n/proxy/stats/summary":           true,
		"/api/v1/namespaces/ns/pods/p":                  false,
		"/api/v1/namespaces/ns/pods/p/status":           false,
		"/api/v1/namespaces/ns/pods/log":                false, // the pod named "log"
		"/apis/apps/v1/namespaces/ns/deployments/d/log": false,
		"/api/v1/nodes/n/status":                        false,
	} {
		if got := isLongRunning(httptest.NewRequest("GET", path, nil)); got != want {
			t.Errorf("isLongRunning(%s) = %v, want %v", path, got, want)
		}
	}
}
