package nodee2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	rtsuite "github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

// TestKubectlThroughTheAPIServer runs the kubelet over the process runtime
// behind a secure API server and uses the real kubectl, unchanged: logs
// (and logs -f streaming), exec, port-forward and
// get --raw .../nodes/N/proxy/stats/summary all go through the API
// server's proxy to the kubelet API, which authenticates the API server by
// its kube-apiserver-kubelet-client certificate.
func TestKubectlThroughTheAPIServer(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("runs the process runtime, which needs root")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl in PATH")
	}
	images, err := rtsuite.FindImages()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rt := startProcessRuntime(ctx, t, images)
	var ca *pki.CA
	api := apiservertest.StartSecure(t, func(cfg *apiserver.Config, sec *apiserver.Security) {
		ca = sec.CA
		kp, err := sec.CA.IssueClient(pki.KubeletClientIdentity())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := kp.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		cfg.KubeletTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	client := api.Client
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: api.Config.Host, CertificateAuthorityData: api.Config.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: api.Config.CertData, ClientKeyData: api.Config.KeyData}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: rtsuite.SandboxNamespace}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	const node = "kl-kubectl-e2e"
	const ns = rtsuite.SandboxNamespace
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kctx, stopKubelet := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		opts := cli.NodeOptions{NodeName: node, Root: filepath.Join(dir, "root"), InternalIP: "127.0.0.1", MaxPods: 110,
			Address: "127.0.0.1", Port: freePort(t), ClientCAFile: caFile}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		done <- cli.RunNode(kctx, opts, api.ConfigFor(t, pki.NodeIdentity(node)), rt, log)
	}()
	t.Cleanup(func() {
		stopKubelet()
		if err := <-done; err != nil {
			t.Errorf("kubelet: %v", err)
		}
	})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "talk", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{
			{Name: "logger", Image: rtsuite.WorkloadImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"logs", "--lines", "100000", "--interval", "100ms", "--keep-running"}},
			{Name: "http", Image: rtsuite.WorkloadImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"liveness", "--port", "8080"}},
		}},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodIn(t, ctx, client, ns, "talk", "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	// logs (kubectl names the first container of a pod of two itself).
	waitFor(t, ctx, "kubectl logs -c logger", func() (bool, error) {
		out, err := run("logs", "talk", "-c", "logger", "--tail", "5")
		return err == nil && strings.Contains(out, "stdout line"), nil
	})

	// logs -f streams: lines keep arriving on one request.
	follow := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "logs", "-f", "talk", "-c", "logger", "--tail", "1")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lineRE := regexp.MustCompile(`^std(out|err) line (\d+)$`)
	sc := bufio.NewScanner(stdout)
	var seen []int
	for len(seen) < 4 && sc.Scan() {
		if m := lineRE.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			seen = append(seen, n)
		}
	}
	_ = follow.Process.Kill()
	_ = follow.Wait()
	if len(seen) < 4 || seen[len(seen)-1] <= seen[0] {
		t.Errorf("kubectl logs -f: lines %v (want later lines streamed after the first)", seen)
	}

	// exec
	if out, err := run("exec", "talk", "-c", "http", "--", "/workload", "print", "exec-through-the-api"); err != nil || !strings.Contains(out, "exec-through-the-api") {
		t.Errorf("kubectl exec: %v %s", err, out)
	}

	// port-forward to the http container's 8080.
	local := freePort(t)
	pf := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "port-forward", "pod/talk", strconv.Itoa(local)+":8080")
	pfOut, err := pf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var pfErr bytes.Buffer
	pf.Stderr = &pfErr
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pf.Process.Kill(); _ = pf.Wait() })
	br := bufio.NewReader(pfOut)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "Forwarding from") {
		t.Fatalf("kubectl port-forward: %q %v %s", line, err, pfErr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, br) }()
	resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}).Get("http://127.0.0.1:" + strconv.Itoa(local) + "/healthz")
	if err != nil {
		t.Fatalf("GET through kubectl port-forward: %v (%s)", err, pfErr.String())
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz through port-forward: %d", resp.StatusCode)
	}

	// nodes/proxy
	out, err := run("get", "--raw", "/api/v1/nodes/"+node+"/proxy/stats/summary")
	if err != nil || !strings.Contains(out, `"nodeName":"`+node+`"`) {
		t.Errorf("kubectl get --raw nodes/proxy/stats/summary: %v %.300s", err, out)
	}
}
