package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// LogOptions select what ReadLog copies of a CRI log file.
type LogOptions struct {
	// Timestamps prefixes each line with its RFC 3339 time.
	Timestamps bool
	// TailLines, when ≥ 0, starts that many lines before the end.
	TailLines int64
	// SinceTime drops lines older than it (zero: none dropped).
	SinceTime time.Time
	// LimitBytes stops after that many bytes (0: no limit).
	LimitBytes int64
	// Follow keeps reading as the file grows, until done returns true
	// (checked whenever the end of the file is reached) or ctx ends.
	Follow bool
}

// logLine is one record of a CRI log file:
// "2016-10-06T00:17:09.669794202Z stdout F the message".
type logLine struct {
	time    time.Time
	stream  string
	partial bool
	msg     []byte
}

func parseLogLine(b []byte) (logLine, error) {
	var l logLine
	f := bytes.SplitN(b, []byte(" "), 4)
	if len(f) < 3 {
		return l, errors.New("not a CRI log line")
	}
	t, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return l, err
	}
	l.time, l.stream, l.partial = t, string(f[1]), string(f[2]) == "P"
	if len(f) == 4 {
		l.msg = f[3]
	}
	return l, nil
}

// ReadLog copies the container log at path (CRI's format, which the
// runtime writes) to w as `kubectl logs` shows it: the messages, partial
// records joined into their line, optionally with timestamps, the tail,
// a start time and a byte limit; with Follow, it keeps copying new
// records until done() reports the container finished and the file is
// drained, or ctx ends.
func ReadLog(ctx context.Context, path string, o LogOptions, w io.Writer, done func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type entry struct {
		l   logLine
		msg []byte
	}
	var lines []entry
	r := bufio.NewReader(f)
	var pending []byte // a record without its newline yet
	var partial []byte // the message of partial records so far
	written := int64(0)
	emit := func(l logLine, msg []byte) error {
		if !o.SinceTime.IsZero() && l.time.Before(o.SinceTime) {
			return nil
		}
		var out []byte
		if o.Timestamps {
			out = append(out, l.time.UTC().Format(time.RFC3339Nano)...)
			out = append(out, ' ')
		}
		out = append(append(out, msg...), '\n')
		if o.LimitBytes > 0 && written+int64(len(out)) > o.LimitBytes {
			out = out[:o.LimitBytes-written]
		}
		n, err := w.Write(out)
		written += int64(n)
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
		if err == nil && o.LimitBytes > 0 && written >= o.LimitBytes {
			return io.EOF
		}
		return err
	}
	record := func(b []byte, collect bool) error {
		l, err := parseLogLine(bytes.TrimRight(b, "\n"))
		if err != nil {
			return nil // not a record: skip it, as kubectl does
		}
		if l.partial {
			partial = append(partial, l.msg...)
			return nil
		}
		msg := append(partial, l.msg...)
		partial = nil
		if collect {
			lines = append(lines, entry{l, append([]byte(nil), msg...)})
			return nil
		}
		return emit(l, msg)
	}
	// The existing content: all of it, or its tail.
	tail := o.TailLines >= 0
	for {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			pending = b
			break
		}
		if err != nil {
			return err
		}
		if err := record(b, tail); err != nil {
			return ignoreEOF(err)
		}
	}
	if tail {
		// lines holds whole lines, partial records joined.
		start := max(int64(len(lines))-o.TailLines, 0)
		for _, e := range lines[start:] {
			if err := emit(e.l, e.msg); err != nil {
				return ignoreEOF(err)
			}
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		b, err := r.ReadBytes('\n')
		pending = append(pending, b...)
		if err == nil {
			if err := record(pending, false); err != nil {
				return ignoreEOF(err)
			}
			pending = nil
			continue
		}
		if err != io.EOF {
			return err
		}
		if done() {
			// One last read: the runtime may have written the end after
			// the previous one.
			if b, _ := io.ReadAll(r); len(b) > 0 {
				pending = append(pending, b...)
				for _, rec := range bytes.SplitAfter(pending, []byte("\n")) {
					if len(rec) > 0 && rec[len(rec)-1] == '\n' {
						if err := record(rec, false); err != nil {
							return ignoreEOF(err)
						}
					}
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
