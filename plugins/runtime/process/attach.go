package process

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Attach: the shim of a container keeps the write end of the container's
// stdin (when ContainerConfig.Stdin) and, besides writing the container's
// output to the log file, sends it to attached clients. A client connects
// to the shim's unix socket attach.sock in the container directory (bound
// and dialled through /proc/self/fd/N/, so that the path's length is no
// limit; mode 0600, and the directory is outside every container's root),
// writes one byte of attachFlag bits, then its stdin, half-closing the
// connection at its end; the shim writes frames of one stream byte
// (attachStdout or attachStderr), a big-endian uint32 length and the data,
// and closes the connection when the container's output ended. With
// StdinOnce the container's stdin is closed when the first client's stdin
// ends.

// attachFlag bits, the first byte a client writes.
const (
	attachWantStdin  = 1 << 0
	attachWantStdout = 1 << 1
	attachWantStderr = 1 << 2
)

// Stream bytes of the shim's frames.
const (
	attachStdout byte = 1
	attachStderr byte = 2
)

// attachWriteTimeout bounds a write to a client: one that does not read
// is dropped rather than stall the container's output.
const attachWriteTimeout = 10 * time.Second

const attachSocket = "attach.sock"

// attachHub is the shim's set of attached clients.
type attachHub struct {
	mu     sync.Mutex
	conns  map[net.Conn]byte // flags
	closed bool

	stdin     *os.File // nil when the container has no stdin
	stdinOnce bool
	closeIn   sync.Once
}

// listenAttach binds dir/attach.sock.
func listenAttach(dir string) (net.Listener, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	p := fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), attachSocket)
	_ = os.Remove(p)
	l, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	// The path goes with d; the socket file goes with the directory.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(filepath.Join(dir, attachSocket), 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// dialAttach connects to the shim of the container whose directory is dir.
func dialAttach(dir string) (*net.UnixConn, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	c, err := net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), attachSocket))
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// serve accepts clients until l is closed.
func (h *attachHub) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go h.handle(c)
	}
}

func (h *attachHub) handle(c net.Conn) {
	var flags [1]byte
	if _, err := io.ReadFull(c, flags[:]); err != nil {
		c.Close()
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.conns[c] = flags[0]
	h.mu.Unlock()
	if flags[0]&attachWantStdin != 0 && h.stdin != nil {
		_, _ = io.Copy(h.stdin, c)
		if h.stdinOnce {
			h.closeStdin()
		}
		return // the client stays attached to the output
	}
	// Until the client goes (or the hub closes the connection).
	_, _ = io.Copy(io.Discard, c)
	h.drop(c)
}

func (h *attachHub) closeStdin() {
	h.closeIn.Do(func() {
		if h.stdin != nil {
			h.stdin.Close()
		}
	})
}

func (h *attachHub) drop(c net.Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	c.Close()
}

// write sends p, output of the given stream, to the clients that want it.
func (h *attachHub) write(stream byte, p []byte) {
	if h == nil || len(p) == 0 {
		return
	}
	want := byte(attachWantStdout)
	if stream == attachStderr {
		want = attachWantStderr
	}
	frame := make([]byte, 5+len(p))
	frame[0] = stream
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(p)))
	copy(frame[5:], p)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, flags := range h.conns {
		if flags&want == 0 {
			continue
		}
		_ = c.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
		if _, err := c.Write(frame); err != nil {
			delete(h.conns, c)
			c.Close()
		}
	}
}

// close ends every client's connection: the container's output ended.
func (h *attachHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// attachClient runs one attach of a client to the shim at dir: it copies in
// (nil: no stdin) to the shim and the shim's frames to out and errw (either
// may be nil) until the shim closes the connection.
func attachClient(dir string, in io.Reader, out, errw io.Writer) error {
	c, err := dialAttach(dir)
	if err != nil {
		return fmt.Errorf("attach to the container's shim: %w", err)
	}
	defer c.Close()
	var flags byte
	if in != nil {
		flags |= attachWantStdin
	}
	if out != nil {
		flags |= attachWantStdout
	}
	if errw != nil {
		flags |= attachWantStderr
	}
	if _, err := c.Write([]byte{flags}); err != nil {
		return err
	}
	if in != nil {
		go func() {
			_, _ = io.Copy(c, in)
			_ = c.CloseWrite()
		}()
	}
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil // the container's output ended (or the shim went)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		w := out
		if hdr[0] == attachStderr {
			w = errw
		}
		if w == nil {
			w = io.Discard
		}
		if _, err := io.CopyN(w, c, int64(n)); err != nil {
			return nil
		}
	}
}
