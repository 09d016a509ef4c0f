package kubelet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

const criLog = `2026-01-02T03:04:05.000000001Z stdout F one
2026-01-02T03:04:06.000000002Z stderr F two
2026-01-02T03:04:07.000000003Z stdout P thr
2026-01-02T03:04:07.000000004Z stdout F ee
not a record
2026-01-02T03:04:08.000000005Z stdout F four
`

func TestReadLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(criLog), 0o644); err != nil {
		t.Fatal(err)
	}
	never := func() bool { return true }
	tests := []struct {
		name string
		o    LogOptions
		want string
	}{
		{"everything, partial records joined", LogOptions{TailLines: -1}, "one\ntwo\nthree\nfour\n"},
		{"tail 2", LogOptions{TailLines: 2}, "three\nfour\n"},
		{"tail 0", LogOptions{TailLines: 0}, ""},
		{"tail beyond the start", LogOptions{TailLines: 10}, "one\ntwo\nthree\nfour\n"},
		{"timestamps", LogOptions{TailLines: 1, Timestamps: true}, "2026-01-02T03:04:08.000000005Z four\n"},
		{"since a time", LogOptions{TailLines: -1, SinceTime: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)}, "two\nthree\nfour\n"},
		{"limitBytes", LogOptions{TailLines: -1, LimitBytes: 6}, "one\ntw"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := ReadLog(context.Background(), path, tc.o, &b, never); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func TestReadLogFollows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte("2026-01-02T03:04:05Z stdout F first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var finished atomic.Bool
	out := &syncBuffer{mu: make(chan struct{}, 1)}
	errc := make(chan error, 1)
	go func() {
		errc <- ReadLog(context.Background(), path, LogOptions{TailLines: -1, Follow: true}, out, finished.Load)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != "first\n" {
		if time.Now().After(deadline) {
			t.Fatalf("before the append: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("2026-01-02T03:04:06Z stdout F second\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for out.String() != "first\nsecond\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after the append: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	finished.Store(true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
