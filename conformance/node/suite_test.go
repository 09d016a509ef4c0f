package node_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/conformance/node"
	rtsuite "github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/kubelet"
)

// TestMain lets the process runtime re-execute this binary as its
// container shims.
func TestMain(m *testing.M) {
	process.RunInitIfRequested()
	os.Exit(m.Run())
}

// testBackoff is the crash-loop back-off of the kubelet under test, short
// so that the suite runs in about a minute (upstream's starts at 10 s).
var testBackoff = kubelet.BackoffPolicy{Initial: 3 * time.Second, Max: 24 * time.Second}

// backoffEnv, when set to "INITIAL,MAX" (durations), replaces testBackoff:
// the meta-test's way to misconfigure the kubelet under test.
const backoffEnv = "KUBELAB_NODE_SUITE_BACKOFF"

// backoff is testBackoff or what backoffEnv says.
func backoff(t *testing.T) kubelet.BackoffPolicy {
	v := os.Getenv(backoffEnv)
	if v == "" {
		return testBackoff
	}
	initial, maxDelay, ok := strings.Cut(v, ",")
	i, err1 := time.ParseDuration(initial)
	m, err2 := time.ParseDuration(maxDelay)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("%s=%q: want INITIAL,MAX durations", backoffEnv, v)
	}
	return kubelet.BackoffPolicy{Initial: i, Max: m}
}

// TestSuite runs the suite in-process against kubelab's kubelet over the
// process runtime (with the test images imported) and kubelab's API
// server over the memory store. It needs root and the test images.
func TestSuite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the process runtime needs root")
	}
	images, err := rtsuite.FindImages()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, stopRuntime, err := rtsuite.PluginTarget(process.Plugin(), images,
		map[string]string{process.OptionPodCIDR: rtsuite.RandomPodCIDR()}).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A stopped kubelet leaves its pods running: remove them all.
		sbs, err := rt.ListPodSandbox(context.Background(), nil)
		if err != nil {
			t.Errorf("list sandboxes: %v", err)
		}
		for _, s := range sbs {
			if err := rt.RemovePodSandbox(context.Background(), s.GetId()); err != nil {
				t.Errorf("remove sandbox %s: %v", s.GetId(), err)
			}
		}
		if err := stopRuntime(); err != nil {
			t.Errorf("stop runtime: %v", err)
		}
	})
	api := apiservertest.Start(t, nil)
	name := "kl-node-" + rand.String(6)
	client, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kubelet.New(kubelet.Config{
		NodeName: name, Client: client, Runtime: rt, RootDir: filepath.Join(t.TempDir(), "kubelet"),
		InternalIP: "127.0.0.1", Backoff: backoff(t), KubeletVersion: "v1.37.2-kubelab",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	kctx, stopKubelet := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k.Run(kctx) }()
	t.Cleanup(func() {
		stopKubelet()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("kubelet: %v", err)
		}
	})
	node.Register(node.Target{
		Name:     "kubelet@process",
		NodeName: name,
		Config:   func(context.Context) (*rest.Config, error) { return api.Config, nil },
	})
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "node")
}
