package runtime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/fakes/brokenruntime"
	"github.com/kubelab/kubelab/plugins/runtime/cri"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/ociimage"
)

// Environment of TestSuite.
const (
	// targetEnv names the plugin TestSuite runs against: "process" (the
	// default), one of the broken runtimes of fakes/brokenruntime, or
	// "containerd" (a real containerd, see conformance/containerd).
	targetEnv = "KUBELAB_RUNTIME_SUITE_TARGET"
	// instanceEnv, when set, is the process runtime's instance name (it
	// names its cgroup directory and bridge), for the leak test.
	instanceEnv = "KUBELAB_RUNTIME_SUITE_INSTANCE"
)

// containerdTarget is the target name of a real containerd.
const containerdTarget = "containerd"

func TestMain(m *testing.M) {
	// The process runtime re-executes this binary as container shims.
	process.RunInitIfRequested()
	os.Exit(func() int {
		if os.Geteuid() != 0 {
			fmt.Println("the runtime suite needs root (namespaces, cgroups); skipping")
			return 0
		}
		if os.Getenv(runtime.ImagesEnv) == "" {
			dir, err := os.MkdirTemp("", "kubelab-runtime-suite-images-")
			if err != nil {
				fmt.Println(err)
				return 1
			}
			defer os.RemoveAll(dir)
			if err := buildImages(dir); err != nil {
				fmt.Println("building the test images:", err)
				return 1
			}
			os.Setenv(runtime.ImagesEnv, dir) // children inherit it
		}
		return m.Run()
	}())
}

// buildImages builds tools/workload and the test images into dir, so that
// the tests never use stale archives.
func buildImages(dir string) error {
	wl := filepath.Join(dir, "workload")
	if err := ociimage.BuildWorkload(context.Background(), wl); err != nil {
		return err
	}
	_, err := ociimage.BuildTestImages(dir, wl, "")
	return err
}

// plugins are the runtimes TestSuite knows, by name.
func plugins() map[string]spec.RuntimePlugin {
	m := map[string]spec.RuntimePlugin{process.Name: process.Plugin()}
	for _, p := range brokenruntime.Plugins(process.Plugin()) {
		m[p.Name] = p
	}
	return m
}

// TestSuite runs the runtime suite against the plugin named by targetEnv,
// in this process.
func TestSuite(t *testing.T) {
	name := os.Getenv(targetEnv)
	if name == "" {
		name = process.Name
	}
	images, err := runtime.FindImages()
	if err != nil {
		t.Fatal(err)
	}
	if name == containerdTarget {
		runtime.Register(runtime.ContainerdTarget(name, cri.Plugin(), images))
		gomega.RegisterFailHandler(ginkgo.Fail)
		ginkgo.RunSpecs(t, "runtime conformance (containerd)")
		return
	}
	p, ok := plugins()[name]
	if !ok {
		t.Fatalf("%s=%q names no known runtime", targetEnv, name)
	}
	opts := map[string]string{process.OptionPodCIDR: runtime.RandomPodCIDR()}
	if inst := os.Getenv(instanceEnv); inst != "" {
		opts[process.OptionInstance] = inst
	}
	runtime.Register(runtime.PluginTarget(p, images, opts))
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, fmt.Sprintf("runtime conformance (%s)", name))
}
