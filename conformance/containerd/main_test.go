package containerd_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that Start and Stop leave no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
