package etcd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/freeport"
)

// memberEnv, when set in the environment of the test binary, makes it act as
// one etcd member of a test cluster (see runMember); the value is the
// member's configuration as JSON.
const memberEnv = "KUBELAB_ETCD_TEST_MEMBER"

// memberConfig is what a member process is started with.
type memberConfig struct {
	Name, Dir, ClientURL, PeerURL, InitialCluster, Token string
}

// runMember runs one etcd member (embed, the same etcd as the plugin's)
// until the process is killed, printing "ready" once it serves.
func runMember(js string) {
	var mc memberConfig
	if err := json.Unmarshal([]byte(js), &mc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cu, err1 := url.Parse(mc.ClientURL)
	pu, err2 := url.Parse(mc.PeerURL)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = mc.Name, mc.Dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster, cfg.InitialClusterToken = mc.InitialCluster, mc.Token
	cfg.MaxRequestBytes = etcd.MinServerRequestBytes
	cfg.EnableGRPCGateway = false
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	select {
	case <-e.Server.ReadyNotify():
		fmt.Println("ready")
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	select {}
}

// cluster is an etcd cluster whose members are processes (this test binary,
// re-executed as runMember), each with its own data dir on tmpfs and its own
// loopback ports, so that a member can be crashed with SIGKILL.
type cluster struct {
	members    []*exec.Cmd
	clientURLs []string
	exited     []chan struct{} // closed when member i's process has been reaped
}

// startCluster starts n members and waits until every one serves. Ports are
// picked free and, should one be taken before etcd binds it, the whole
// cluster is started again on fresh ports and data dirs.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryStartCluster(t, n)
		if err == nil {
			t.Cleanup(c.kill)
			return c
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("starting a %d-member cluster: %v", n, err)
		}
	}
}

func tryStartCluster(t *testing.T, n int) (*cluster, error) {
	ports, err := freeport.Ports(2 * n)
	if err != nil {
		return nil, err
	}
	loopback := func(port int) string { return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=%s", i, loopback(ports[2*i+1])))
	}
	dir := tmpfsDir(t)
	c := &cluster{}
	ready := make(chan error, n)
	for i := range n {
		mc := memberConfig{
			Name:           fmt.Sprintf("m%d", i),
			Dir:            filepath.Join(dir, fmt.Sprintf("m%d", i)),
			ClientURL:      loopback(ports[2*i]),
			PeerURL:        loopback(ports[2*i+1]),
			InitialCluster: strings.Join(initial, ","),
			Token:          "kubelab-test-" + filepath.Base(dir),
		}
		js, _ := json.Marshal(mc)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), memberEnv+"="+string(js))
		// The member dies with the test process, even if the test is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			c.kill()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			c.kill()
			return nil, err
		}
		exited := make(chan struct{})
		c.members = append(c.members, cmd)
		c.exited = append(c.exited, exited)
		c.clientURLs = append(c.clientURLs, mc.ClientURL)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			if line == "ready\n" {
				ready <- nil
				io.Copy(io.Discard, out)
			}
			err := cmd.Wait()
			close(exited)
			ready <- fmt.Errorf("member %s exited: %v: %s", mc.Name, err, stderr.String())
		}()
	}
	for range n {
		select {
		case err := <-ready:
			if err != nil {
				c.kill()
				return nil, err
			}
		case <-time.After(time.Minute):
			c.kill()
			return nil, errors.New("cluster not ready within a minute")
		}
	}
	return c, nil
}

// leader returns the index of the member that leads, as far as the members
// that answer know, or -1.
func (c *cluster) leader(ctx context.Context, client *clientv3.Client) int {
	for i, ep := range c.clientURLs {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := client.Status(sctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// crash kills member i with SIGKILL and waits until it is gone.
func (c *cluster) crash(i int) {
	c.members[i].Process.Kill()
	<-c.exited[i]
}

func (c *cluster) kill() {
	for i := range c.members {
		c.crash(i)
	}
}

// TestClusterSurvivesMemberCrash runs a write load through the plugin in
// endpoints mode against a 3-member cluster, crashes the leader in the
// middle of it, and checks that every acknowledged write is still readable,
// that writes keep succeeding on the two remaining members, and that a
// watch resumed after errors saw every write exactly once, in order.
//
// The phases are driven by counts of acknowledged writes, not by time: the
// leader is crashed once phase1 writes are acknowledged, and the load ends
// once phase2 more writes were both started and acknowledged after the
// crash.
func TestClusterSurvivesMemberCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member cluster")
	}
	const (
		writers = 4
		phase1  = 200
		phase2  = 200
	)
	t0 := time.Now()
	c := startCluster(t, 3)
	t.Logf("cluster started in %v", time.Since(t0))
	ctx := testCtx(t)
	s, err := etcd.New(ctx, etcd.Options{Endpoints: c.clientURLs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The watcher resumes from the last revision it received after any
	// error event (the crash may end its stream, e.g. with "no leader").
	var (
		watchMu   sync.Mutex // guards seen, watchLast
		seen      = map[string]int{}
		watchLast = start
		watchErrs atomic.Int64
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- func() error {
			for watchCtx.Err() == nil {
				watchMu.Lock()
				from := watchLast
				watchMu.Unlock()
				w, err := s.Watch(watchCtx, "/load", from)
				if err != nil {
					watchErrs.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				for batch := range w.Events() {
					watchMu.Lock()
					for _, e := range batch {
						switch {
						case e.Type == spec.EventError:
							watchErrs.Add(1)
						case e.Type != spec.EventCreated:
							watchMu.Unlock()
							return fmt.Errorf("unexpected %v event %+v", e.Type, e.KV)
						case e.Revision() <= watchLast:
							watchMu.Unlock()
							return fmt.Errorf("event at revision %d after %d", e.Revision(), watchLast)
						default:
							seen[e.KV.Key]++
							watchLast = e.Revision()
						}
					}
					watchMu.Unlock()
				}
				w.Stop()
			}
			return nil
		}()
	}()

	var (
		ackMu      sync.Mutex // guards acked, crashed, afterCrash
		acked      = map[string]bool{}
		crashed    bool
		afterCrash int
		retries    atomic.Int64
	)
	crashNow := make(chan struct{})
	loadDone := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-loadDone:
					return
				default:
				}
				ackMu.Lock()
				startedAfterCrash := crashed
				ackMu.Unlock()
				key := fmt.Sprintf("/load/%d/%04d", w, i)
				// A failed write may or may not have been committed; it is
				// retried until it is known to be: acknowledged, or
				// ErrAlreadyExists because an earlier attempt committed.
				// Each attempt has a deadline, as a real client's would: a
				// proposal forwarded to a leader that just died is lost,
				// and etcd answers it only after its request timeout (7s).
				for {
					actx, cancel := context.WithTimeout(ctx, time.Second)
					_, err := s.Create(actx, key, []byte(key), spec.CreateOptions{})
					cancel()
					if err == nil || errors.Is(err, spec.ErrAlreadyExists) {
						break
					}
					if ctx.Err() != nil {
						return
					}
					retries.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
				ackMu.Lock()
				acked[key] = true
				if len(acked) == phase1 {
					close(crashNow)
				}
				if startedAfterCrash {
					if afterCrash++; afterCrash == phase2 {
						close(loadDone)
					}
				}
				ackMu.Unlock()
			}
		}()
	}

	select {
	case <-crashNow:
	case <-ctx.Done():
		t.Fatal("phase 1 did not complete")
	}
	leader := c.leader(ctx, s.Client())
	if leader < 0 {
		leader = 0 // mid-election: crash any member
	}
	ackMu.Lock()
	crashed = true
	ackMu.Unlock()
	t1 := time.Now()
	c.crash(leader)
	t.Logf("crashed member m%d after %d acknowledged writes, %v after start", leader, phase1, t1.Sub(t0))

	select {
	case <-loadDone:
	case <-ctx.Done():
		t.Fatalf("after the crash only %d writes were acknowledged", afterCrash)
	}
	wg.Wait()
	t.Logf("phase 2 took %v", time.Since(t1))
	t.Logf("%d writes acknowledged, %d retried, %d watch errors", len(acked), retries.Load(), watchErrs.Load())

	for key := range acked {
		kv, err := s.Get(ctx, key)
		if err != nil || string(kv.Value) != key {
			t.Errorf("acknowledged %q: %+v, %v", key, kv, err)
		}
	}
	res, err := s.List(ctx, "/load", spec.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != len(acked) {
		t.Errorf("List finds %d keys, %d were acknowledged", len(res.Items), len(acked))
	}

	// The watch catches up with the last write and saw each key once.
	for {
		watchMu.Lock()
		caught := watchLast >= res.Revision
		watchMu.Unlock()
		if caught {
			break
		}
		select {
		case err := <-watchDone:
			t.Fatalf("watcher: %v", err)
		case <-ctx.Done():
			t.Fatalf("watch stuck at revision %d, want %d", watchLast, res.Revision)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopWatch()
	if err := <-watchDone; err != nil {
		t.Fatalf("watcher: %v", err)
	}
	for key := range acked {
		if seen[key] != 1 {
			t.Errorf("watch saw %q %d times", key, seen[key])
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("watch saw %d keys, %d were written", len(seen), len(acked))
	}
}
