package runtimebench_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/hollow"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/runtimebench"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := runtimebench.Summarize(ds)
	if l.P50 != 50*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond || l.Mean != 50500*time.Microsecond {
		t.Errorf("Summarize(1..100ms) = %+v", l)
	}
	if l := runtimebench.Summarize([]time.Duration{7}); l.P50 != 7 || l.P99 != 7 {
		t.Errorf("Summarize(one) = %+v", l)
	}
	if l := runtimebench.Summarize(nil); l != (runtimebench.Latency{}) {
		t.Errorf("Summarize(nil) = %+v", l)
	}
}

// TestRunOnTheHollowRuntime runs the workload against the hollow runtime
// (which runs nothing): every pod is started, then removed.
func TestRunOnTheHollowRuntime(t *testing.T) {
	ctx := context.Background()
	rt := hollow.New(hollow.Options{})
	if _, err := rt.PullImage(ctx, &runtimeapi.ImageSpec{Image: "kubelab.local/workload:1.0"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := runtimebench.Run(ctx, "hollow", rt, runtimebench.Config{Pods: 20, Helpers: func() []int { return []int{os.Getpid()} }, DaemonPid: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pods != 20 || res.Start.P50 <= 0 || res.Stop.P99 < res.Stop.P50 || res.PodPSSBytes == 0 || res.PodProcesses <= 0 {
		t.Errorf("result %+v", res)
	}
	if sbs, err := rt.ListPodSandbox(ctx, nil); err != nil || len(sbs) != 0 {
		t.Errorf("pods left after the run: %v, %v", sbs, err)
	}
}

func TestRunRejectsAMissingImageAndNegativePods(t *testing.T) {
	rt := hollow.New(hollow.Options{})
	if _, err := runtimebench.Run(context.Background(), "hollow", rt, runtimebench.Config{Pods: 1, Image: "kubelab.local/absent:1.0"}); err == nil {
		t.Error("a missing image was accepted")
	}
	if _, err := runtimebench.Run(context.Background(), "hollow", rt, runtimebench.Config{Pods: -1}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("-1 pods: %v, want ErrInvalid", err)
	}
}

func TestPidsFindsThisProcess(t *testing.T) {
	self := os.Args[0]
	pids := runtimebench.Pids(func(argv []string) bool { return argv[0] == self })
	if !slices.Contains(pids, os.Getpid()) {
		t.Errorf("Pids(argv[0] == %s) = %v, missing %d", self, pids, os.Getpid())
	}
}
