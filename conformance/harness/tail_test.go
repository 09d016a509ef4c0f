package harness_test

import (
	"fmt"
	"testing"

	"github.com/kubelab/kubelab/conformance/harness"
)

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := harness.NewTailBuffer(10)
	fmt.Fprint(b, "0123456789abc")
	if got := b.String(); got != "3456789abc" {
		t.Fatalf("String() = %q, want the last 10 bytes", got)
	}
	b = harness.NewTailBuffer(1 << 10)
	fmt.Fprint(b, "one\n\x1b[38;5;9mtwo\x1b[0m\nthree\n")
	if got := b.LastLines(2); got != "two\nthree" {
		t.Fatalf("LastLines(2) = %q, want %q", got, "two\nthree")
	}
}
