package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/kubelab/kubelab/spec/freeport"
)

// embeddedName is the member name of the embedded server. It is fixed so that
// a data dir is always reopened by a member of the same name.
const embeddedName = "kubelab"

// bindAttempts bounds the retries when a port picked as free was taken by
// someone else before etcd bound it.
const bindAttempts = 8

// readyTimeout bounds the wait for the embedded server to be ready when the
// caller's ctx has no deadline.
const readyTimeout = time.Minute

// embedded is a single-member etcd server running in this process.
type embedded struct {
	etcd      *embed.Etcd
	clientURL string
	// ports are the loopback ports the server listens on.
	ports []int
	// tmpDir is the data dir New created, removed by close; "" when the
	// caller gave one.
	tmpDir string
	// lock holds an exclusive flock on the data dir's lockFile while the
	// server runs.
	lock *os.File
}

// lockFile is the file in a data dir that a running store locks.
const lockFile = ".kubelab-etcd.lock"

// ErrDataDirInUse is wrapped by New's error when another store (in this or
// another process) runs an embedded server on the same data dir.
var ErrDataDirInUse = errors.New("data dir in use by another etcd store")

// lockDir takes an exclusive, non-blocking flock on dir's lockFile. The lock
// goes with the returned file: closing it, or the process's death, releases
// it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("etcd store: locking data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("etcd store: %q: %w", dir, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("etcd store: locking data dir %q: %w", dir, err)
	}
	return f, nil
}

// startEmbedded starts a single-member etcd server on free loopback ports
// with its data in o.DataDir (or a new temporary directory) and waits until
// it serves. On error nothing it started is left running and a temporary
// directory it created is removed.
func startEmbedded(ctx context.Context, o Options, lg *zap.Logger) (_ *embedded, err error) {
	srv := &embedded{}
	dir := o.DataDir
	if dir == "" {
		if srv.tmpDir, err = os.MkdirTemp("", "kubelab-etcd-"); err != nil {
			return nil, fmt.Errorf("etcd store: temporary data dir: %w", err)
		}
		dir = srv.tmpDir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd store: data dir: %w", err)
	}
	defer func() {
		if err != nil && srv.tmpDir != "" {
			os.RemoveAll(srv.tmpDir)
		}
	}()
	// etcd would wait forever for the lock of a data dir that another
	// server holds; fail at once instead.
	if srv.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			srv.lock.Close()
		}
	}()

	// embed cannot listen on port 0 and report the port it got for peers,
	// and the advertised URLs must be known before it starts; so pick ports
	// that are free now and, should another process take one before etcd
	// binds it, start again on fresh ones. A failed bind happens before etcd
	// touches the data dir, so a retry is clean.
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ports, err := freeport.Ports(2)
		if err != nil {
			return nil, fmt.Errorf("etcd store: picking ports: %w", err)
		}
		cfg := embeddedConfig(dir, ports[0], ports[1], o, lg)
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			if isAddrInUse(err) && attempt < bindAttempts {
				continue
			}
			return nil, fmt.Errorf("etcd store: starting embedded etcd in %q: %w", dir, err)
		}
		srv.etcd, srv.ports = e, ports
		srv.clientURL = cfg.AdvertiseClientUrls[0].String()
		break
	}

	wait := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	select {
	case <-srv.etcd.Server.ReadyNotify():
		return srv, nil
	case err = <-srv.etcd.Err():
		err = fmt.Errorf("etcd store: embedded etcd in %q failed while starting: %w", dir, err)
	case <-srv.etcd.Server.StopNotify():
		err = fmt.Errorf("etcd store: embedded etcd in %q stopped while starting", dir)
	case <-wait.Done():
		err = fmt.Errorf("etcd store: waiting for embedded etcd in %q: %w", dir, wait.Err())
	}
	srv.etcd.Close()
	return nil, err
}

// embeddedConfig is the configuration of a single-member server.
func embeddedConfig(dir string, clientPort, peerPort int, o Options, lg *zap.Logger) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = embeddedName
	cfg.Dir = dir
	clientURL := loopbackURL(clientPort)
	peerURL := loopbackURL(peerPort)
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.InitialClusterToken = "kubelab-embedded"
	cfg.MaxRequestBytes = maxRequestBytes
	cfg.UnsafeNoFsync = o.UnsafeNoFsync
	// No HTTP gateway and no metrics listener: the store speaks gRPC only.
	cfg.EnableGRPCGateway = false
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	// A single member never loses its leadership, so short raft ticks cost
	// nothing but let it elect itself within a few tens of milliseconds of
	// starting (etcd fast-forwards a lone member's election to one tick). They
	// also make etcd's minimum lease TTL (1.5 election timeouts, rounded up to
	// seconds) one second, so TTLs are honoured to the second.
	cfg.TickMs = 20
	cfg.ElectionMs = 200
	return cfg
}

// close stops the server, waits until it has released its goroutines,
// ports and files, and removes the temporary data dir, if any.
func (srv *embedded) close() error {
	srv.etcd.Close()
	srv.lock.Close()
	if srv.tmpDir != "" {
		if err := os.RemoveAll(srv.tmpDir); err != nil {
			return fmt.Errorf("etcd store: removing temporary data dir: %w", err)
		}
	}
	return nil
}

func loopbackURL(port int) url.URL {
	return url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

// isAddrInUse reports whether err is a failure to bind a port in use.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
