package harness

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
)

// TailBuffer is an io.Writer that keeps only the last Max bytes written to
// it: the end of a child process's output (etcd, containerd, a runner
// child), to show when that process fails. It is safe for concurrent use.
type TailBuffer struct {
	// Max is how many bytes are kept.
	Max int

	mu  sync.Mutex // guards buf
	buf []byte
}

// NewTailBuffer returns a TailBuffer keeping the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{Max: max} }

// Write keeps p, dropping what falls out of the last Max bytes.
func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.Max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (b *TailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// LastLines returns up to n last lines of what is kept, without ANSI
// colour codes.
func (b *TailBuffer) LastLines(n int) string {
	b.mu.Lock()
	kept := bytes.TrimRight(ansiCodes.ReplaceAll(b.buf, nil), "\n")
	b.mu.Unlock()
	lines := strings.Split(string(kept), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var ansiCodes = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
