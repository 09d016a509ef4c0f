package etcd

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/kubelab/kubelab/spec"
)

// Keys of spec.StoreConfig.Options understood by the plugin (see
// OptionsFromConfig). Any other key is ErrInvalid.
const (
	// OptionDialTimeout ("dial-timeout") is a Go duration ("5s"): how long
	// New waits for the first connection to the server. Default 5s.
	OptionDialTimeout = "dial-timeout"
	// OptionWatchBuffer ("watch-buffer") is a positive integer: how many
	// event batches one watch may hold undelivered before it is cut off
	// with ErrWatcherTooSlow. Default 1024.
	OptionWatchBuffer = "watch-buffer"
	// OptionUnsafeNoFsync ("unsafe-no-fsync") is a boolean ("true"):
	// the embedded server skips fsync. Data survives a crash of the process
	// (it is in the page cache) but not of the machine. Ignored with
	// endpoints. Default false.
	OptionUnsafeNoFsync = "unsafe-no-fsync"
	// OptionLogLevel ("log-level") is the lowest level of etcd's own logs
	// forwarded to the configured slog.Logger: "debug", "info", "warn" or
	// "error". Default "error": etcd is chatty.
	OptionLogLevel = "log-level"
)

// Defaults of Options' zero values.
const (
	// DefaultDialTimeout is used when Options.DialTimeout is 0.
	DefaultDialTimeout = 5 * time.Second
	// DefaultWatchBuffer is used when Options.WatchBuffer is 0.
	DefaultWatchBuffer = 1024
)

// maxRequestBytes is the request size limit of the embedded server and the
// client's send limit: a spec.MaxValueSize value plus its key and the
// transaction around it, with room to spare. etcd's own default (1.5 MiB)
// is exactly spec.MaxValueSize and so too small once the key is added.
const maxRequestBytes = 2 << 20

// MinServerRequestBytes is the smallest --max-request-bytes an external etcd
// server needs so that every value of spec.MaxValueSize bytes under a key of
// spec.MaxKeySize bytes fits in one request (2 MiB, with room to spare).
const MinServerRequestBytes = maxRequestBytes

// Options configure a Store. The zero value is an embedded server on a
// temporary data dir that Close removes.
type Options struct {
	// Endpoints, when not empty, are the client URLs of an external etcd
	// cluster (e.g. "http://10.0.0.1:2379"); the store connects to them
	// and runs no server of its own, and Close closes only the client.
	// External servers need --max-request-bytes of at least
	// MinServerRequestBytes to take values of spec.MaxValueSize bytes.
	Endpoints []string

	// DataDir is the embedded server's data directory (etcd's --data-dir:
	// etcd keeps its WAL and database under "member/" in it). It is created
	// if missing and kept by Close, so opening a Store with the same DataDir
	// again finds the data, also after a crash. While the store is open it
	// holds a lock on the directory (the file .kubelab-etcd.lock in it); a
	// second store on the same DataDir fails with ErrDataDirInUse. When
	// empty, New creates a temporary directory and Close removes it
	// (nothing is durable then). Ignored with Endpoints.
	DataDir string

	// Logger receives etcd's logs at LogLevel and above; nil discards them.
	Logger *slog.Logger
	// LogLevel is the lowest level of etcd's logs passed to Logger; nil
	// means slog.LevelError (etcd is chatty below it).
	LogLevel slog.Leveler

	// DialTimeout bounds how long New waits for a connection (0 means
	// DefaultDialTimeout). The ctx passed to New bounds it too.
	DialTimeout time.Duration

	// WatchBuffer is how many event batches one watch may hold undelivered;
	// a watcher whose consumer falls further behind is cut off with an
	// error event wrapping spec.ErrWatcherTooSlow (0 means
	// DefaultWatchBuffer).
	WatchBuffer int

	// UnsafeNoFsync makes the embedded server skip fsync: faster, and data
	// still survives a crash of the process, but not of the machine.
	UnsafeNoFsync bool
}

// OptionsFromConfig translates a spec.StoreConfig into Options: DataDir,
// Endpoints and Logger are copied, and cfg.Options may hold the keys
// OptionDialTimeout, OptionWatchBuffer, OptionUnsafeNoFsync and
// OptionLogLevel. An unknown key or a malformed value is an error wrapping
// spec.ErrInvalid.
func OptionsFromConfig(cfg spec.StoreConfig) (Options, error) {
	o := Options{
		Endpoints: slices.Clone(cfg.Endpoints),
		DataDir:   cfg.DataDir,
		Logger:    cfg.Logger,
	}
	for _, k := range sortedKeys(cfg.Options) {
		v := cfg.Options[k]
		bad := func(err error) error {
			return fmt.Errorf("etcd store option %q=%q: %v: %w", k, v, err, spec.ErrInvalid)
		}
		switch k {
		case OptionDialTimeout:
			d, err := time.ParseDuration(v)
			if err != nil {
				return Options{}, bad(err)
			}
			if d <= 0 {
				return Options{}, bad(fmt.Errorf("not positive"))
			}
			o.DialTimeout = d
		case OptionWatchBuffer:
			n, err := strconv.Atoi(v)
			if err != nil {
				return Options{}, bad(err)
			}
			if n <= 0 {
				return Options{}, bad(fmt.Errorf("not positive"))
			}
			o.WatchBuffer = n
		case OptionUnsafeNoFsync:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Options{}, bad(err)
			}
			o.UnsafeNoFsync = b
		case OptionLogLevel:
			var l slog.Level
			if err := l.UnmarshalText([]byte(v)); err != nil {
				return Options{}, bad(err)
			}
			o.LogLevel = l
		default:
			return Options{}, fmt.Errorf("unknown etcd store option %q (known: %s): %w",
				k, strings.Join([]string{OptionDialTimeout, OptionLogLevel, OptionUnsafeNoFsync, OptionWatchBuffer}, ", "), spec.ErrInvalid)
		}
	}
	return o, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// withDefaults fills in the zero values.
func (o Options) withDefaults() Options {
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WatchBuffer == 0 {
		o.WatchBuffer = DefaultWatchBuffer
	}
	return o
}

// validate reports malformed Options as errors wrapping spec.ErrInvalid.
func (o Options) validate() error {
	switch {
	case o.DialTimeout < 0:
		return fmt.Errorf("etcd store: negative DialTimeout %v: %w", o.DialTimeout, spec.ErrInvalid)
	case o.WatchBuffer < 0:
		return fmt.Errorf("etcd store: negative WatchBuffer %d: %w", o.WatchBuffer, spec.ErrInvalid)
	}
	for _, ep := range o.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return fmt.Errorf("etcd store: empty endpoint in %q: %w", o.Endpoints, spec.ErrInvalid)
		}
	}
	return nil
}

// zapLevel maps an slog level onto zap's; nil is error.
func zapLevel(lv slog.Leveler) zapcore.Level {
	if lv == nil {
		return zapcore.ErrorLevel
	}
	switch l := lv.Level(); {
	case l < slog.LevelInfo:
		return zapcore.DebugLevel
	case l < slog.LevelWarn:
		return zapcore.InfoLevel
	case l < slog.LevelError:
		return zapcore.WarnLevel
	}
	return zapcore.ErrorLevel
}
