package cri_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that closing the runtime leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
