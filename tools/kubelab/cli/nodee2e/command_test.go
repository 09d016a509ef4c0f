package nodee2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

// TestNodeCommandOverHollow runs `kubelab node --runtime hollow` as a user
// would, flags and kubeconfig included, and sees the Node and a pod's
// status through the API.
func TestNodeCommandOverHollow(t *testing.T) {
	api := apiservertest.Start(t, nil)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: api.Config.Host}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kctx, stop := context.WithCancel(ctx)
	port := freePort(t)
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		cmd := cli.NewRootCommand(builtin.Registry())
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		done <- cli.Execute(kctx, cmd, []string{"node", "--kubeconfig", kubeconfig, "--node-name", "hollow-1",
			"--runtime", "hollow", "--root", t.TempDir(), "--node-ip", "192.0.2.7", "--pod-cidr", "10.77.1.0/24",
			"--cpu", "3", "--memory", "2Gi", "--max-pods", "50", "--address", "127.0.0.1", "--port", strconv.Itoa(port)})
	}()
	defer func() {
		stop()
		if code := <-done; code != cli.ExitOK {
			t.Errorf("kubelab node exited %d: %s", code, errOut.String())
		}
	}()
	client := api.Client
	waitFor(t, ctx, "node registered Ready", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, "hollow-1", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	n, _ := client.CoreV1().Nodes().Get(ctx, "hollow-1", metav1.GetOptions{})
	if n.Status.Capacity.Cpu().String() != "3" || n.Status.Capacity.Memory().String() != "2Gi" || n.Status.Capacity.Pods().Value() != 50 {
		t.Errorf("capacity %v", n.Status.Capacity)
	}
	if n.Spec.PodCIDR != "10.77.1.0/24" || n.Status.Addresses[0].Address != "192.0.2.7" {
		t.Errorf("podCIDR %q addresses %v", n.Spec.PodCIDR, n.Status.Addresses)
	}
	// The kubelet API answers over HTTPS (self-signed) and wants
	// credentials.
	insecureTLS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, ctx, "kubelet API 401 without credentials", func() (bool, error) {
		resp, err := insecureTLS.Get("https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized, nil
	})
	if _, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{NodeName: "hollow-1", Containers: []corev1.Container{{Name: "c", Image: "example.com/img:1"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ctx, client, "p", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if !strings.HasPrefix(p.Status.PodIP, "10.77.1.") || p.Status.HostIP != "192.0.2.7" {
		t.Errorf("pod IP %q (want one from 10.77.1.0/24) host IP %q", p.Status.PodIP, p.Status.HostIP)
	}
}

func TestParseNodeRuntime(t *testing.T) {
	reg := builtin.Registry()
	tests := []struct {
		opts     cli.NodeOptions
		plugin   string
		endpoint string
		podCIDR  string
		err      error
	}{
		{cli.NodeOptions{Runtime: "process", Root: "/r", PodCIDR: "10.1.0.0/24"}, "process", "", "10.1.0.0/24", nil},
		{cli.NodeOptions{Runtime: "hollow", Root: "/r", PodCIDR: "10.1.0.0/24", RuntimeOptions: []string{"pod-cidr=10.2.0.0/24"}}, "hollow", "", "10.2.0.0/24", nil},
		{cli.NodeOptions{Runtime: "cri=unix:///run/c.sock", Root: "/r", PodCIDR: "10.1.0.0/24"}, "cri", "unix:///run/c.sock", "", nil},
		{cli.NodeOptions{Runtime: "nope", Root: "/r"}, "", "", "", spec.ErrNotFound},
		{cli.NodeOptions{Runtime: "hollow", Root: "/r", RuntimeOptions: []string{"novalue"}}, "", "", "", spec.ErrInvalid},
	}
	for _, tc := range tests {
		p, cfg, err := cli.ParseNodeRuntime(reg, tc.opts)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%+v: %v, want %v", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || p.Name != tc.plugin || cfg.Endpoint != tc.endpoint || cfg.Options["pod-cidr"] != tc.podCIDR || cfg.RootDir != "/r/runtime" {
			t.Errorf("%+v: plugin %q config %+v, %v", tc.opts, p.Name, cfg, err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNodeCommandHollowCount runs three hollow kubelets in one process
// (--count): each registers its own Node and runs the pods bound to it.
func TestNodeCommandHollowCount(t *testing.T) {
	api := apiservertest.Start(t, nil)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: api.Config.Host}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kctx, stop := context.WithCancel(ctx)
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		cmd := cli.NewRootCommand(builtin.Registry())
		cmd.SetOut(io.Discard)
		cmd.SetErr(&errOut)
		done <- cli.Execute(kctx, cmd, []string{"node", "--kubeconfig", kubeconfig, "--node-name", "hn", "--count", "3",
			"--runtime", "hollow", "--root", t.TempDir(), "--port", "0"})
	}()
	defer func() {
		stop()
		if code := <-done; code != cli.ExitOK {
			t.Errorf("kubelab node exited %d: %s", code, errOut.String())
		}
	}()
	client := api.Client
	for i := range 3 {
		name := "hn-" + strconv.Itoa(i)
		if _, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p" + strconv.Itoa(i)},
			Spec:       corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "c", Image: "example.com/img:1"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		waitPod(t, ctx, client, "p"+strconv.Itoa(i), "Running on hn-"+strconv.Itoa(i), func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		if _, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, "hn-"+strconv.Itoa(i), metav1.GetOptions{}); err != nil {
			t.Errorf("lease of hn-%d: %v", i, err)
		}
	}
}
