package etcd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/kubelab/kubelab/plugins/store/etcd"
	"github.com/kubelab/kubelab/spec"
)

// crashChildEnv, when set in the environment of the test binary, makes it act
// as the child of TestDurableAfterCrash: it writes into the data dir named
// by the variable and kills itself mid-load.
const crashChildEnv = "KUBELAB_ETCD_CRASH_CHILD_DIR"

// crashAfter is how many writes the child acknowledges before it kills
// itself, with more in flight.
const crashAfter = 200

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
	}
	if js := os.Getenv(memberEnv); js != "" {
		runMember(js)
	}
	// Every test must leave no goroutine behind: stores and watches closed,
	// embedded servers stopped. No etcd global needs to be ignored.
	goleak.VerifyTestMain(m)
}

// crashChild opens an embedded store on dir, runs four writers that print
// every acknowledged write as "acked <key> <revision>", and SIGKILLs its own
// process once crashAfter writes are acknowledged, with no Close.
func crashChild(dir string) {
	ctx := context.Background()
	s, err := etcd.New(ctx, etcd.Options{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex // serializes the acknowledgements and counts them
	acked := 0
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("/crash/%d/%d", w, i)
				rev, err := s.Create(ctx, key, []byte(key), spec.CreateOptions{})
				if err != nil {
					continue // the parent only checks acknowledged writes
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %s %d\n", key, rev)
				if acked++; acked == crashAfter {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestDurableAfterCrash runs a write load in a child process that is killed
// (SIGKILL, no Close) mid-load, then reopens the data dir and finds every
// write the child saw acknowledged.
func TestDurableAfterCrash(t *testing.T) {
	dir := tmpfsDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	var last int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "acked" {
			continue
		}
		rev, _ := strconv.ParseInt(f[2], 10, 64)
		acked[f[1]] = rev
		last = max(last, rev)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
	if len(acked) != crashAfter {
		t.Fatalf("child acknowledged %d writes, want %d", len(acked), crashAfter)
	}

	s := openEmbedded(t, etcd.Options{DataDir: dir})
	ctx := testCtx(t)
	if rev, err := s.Revision(ctx); err != nil || rev < last {
		t.Errorf("revision after the crash = %d, %v; want at least %d", rev, err, last)
	}
	for key, rev := range acked {
		kv, err := s.Get(ctx, key)
		if err != nil || string(kv.Value) != key || kv.ModRevision != rev {
			t.Errorf("acknowledged %q at %d; after the crash: %+v, %v", key, rev, kv, err)
		}
	}
}
