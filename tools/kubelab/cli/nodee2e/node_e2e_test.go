package nodee2e

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	rtsuite "github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/kubelet"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

// TestNodeRunsPodsOnTheProcessRuntime runs `kubelab node`'s kubelet over
// the process runtime against an in-process API server and checks, through
// the API only: the Node registers Ready with its Lease; a pod runs with a
// pod IP and turns Ready; a crashing container under restartPolicy Always
// restarts with CrashLoopBackOff; a deleted pod stops within its grace
// period and its object goes away; a restartPolicy Never pod that exits 0
// Succeeds.
func TestNodeRunsPodsOnTheProcessRuntime(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("runs the process runtime, which needs root")
	}
	images, err := rtsuite.FindImages()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	rt := startProcessRuntime(ctx, t, images)
	api := apiservertest.Start(t, nil)
	client := api.Client

	const node = "kl-node-e2e"
	// The runtime suite's namespace: should this test crash, the next
	// runtime sweep (SweepStale) removes what it left.
	const ns = rtsuite.SandboxNamespace
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The kubelet API trusts client certificates of this CA (the API
	// server's open test mode allows every access review).
	ca, err := pki.NewCA("kubelet-client-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	clientCert, err := ca.IssueClient(pki.Identity{User: "kube-apiserver-kubelet-client", Groups: []string{"system:masters"}})
	if err != nil {
		t.Fatal(err)
	}
	apiPort := freePort(t)
	kctx, stopKubelet := context.WithCancel(ctx)
	done := make(chan error, 1)
	root := t.TempDir()
	go func() {
		opts := cli.NodeOptions{NodeName: node, Root: root, InternalIP: "127.0.0.1", MaxPods: 110,
			Address: "127.0.0.1", Port: apiPort, ClientCAFile: caFile,
			Backoff: kubelet.BackoffPolicy{Initial: 2 * time.Second, Max: 8 * time.Second}}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		done <- cli.RunNode(kctx, opts, api.Config, rt, log)
	}()
	t.Cleanup(func() {
		stopKubelet()
		if err := <-done; err != nil {
			t.Errorf("kubelet: %v", err)
		}
	})

	// Registration and heartbeat.
	waitFor(t, ctx, "node Ready", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	n, _ := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if n.Labels[corev1.LabelHostname] != node || n.Labels[corev1.LabelOSStable] != "linux" {
		t.Errorf("node labels %v", n.Labels)
	}
	if n.Status.Capacity.Pods().Value() != 110 || n.Status.Capacity.Cpu().IsZero() || n.Status.Capacity.Memory().IsZero() {
		t.Errorf("node capacity %v", n.Status.Capacity)
	}
	var lease *coordinationv1.Lease
	waitFor(t, ctx, "node lease", func() (bool, error) {
		lease, err = client.CoordinationV1().Leases(kubelet.NodeLeaseNamespace).Get(ctx, node, metav1.GetOptions{})
		return err == nil, nil
	})
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != node || *lease.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease spec %+v", lease.Spec)
	}

	pod := func(name string, policy corev1.RestartPolicy, args ...string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName: node, RestartPolicy: policy,
				Containers: []corev1.Container{{Name: "main", Image: rtsuite.WorkloadImage, Args: args,
					ImagePullPolicy: corev1.PullIfNotPresent}},
			},
		}
	}
	create := func(p *corev1.Pod) {
		t.Helper()
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// A running, ready pod with an IP.
	create(pod("web", corev1.RestartPolicyAlways, "pause"))
	web := waitPodIn(t, ctx, client, ns, "web", "Running and Ready with an IP", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && podReady(p)
	})
	if cs := web.Status.ContainerStatuses; len(cs) != 1 || cs[0].ContainerID == "" || cs[0].State.Running == nil || cs[0].ImageID == "" {
		t.Errorf("web container statuses %+v", cs)
	}
	if web.Status.HostIP != "127.0.0.1" || web.Status.StartTime == nil {
		t.Errorf("web hostIP %q startTime %v", web.Status.HostIP, web.Status.StartTime)
	}

	// Probes from the node: an httpGet readiness probe makes the pod
	// Ready; when /healthz starts failing, the httpGet liveness probe
	// restarts the container, which then serves again.
	live := pod("live", corev1.RestartPolicyAlways, "liveness", "--port", "8080")
	get := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}
	live.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: get, PeriodSeconds: 1}
	live.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: get, PeriodSeconds: 1, FailureThreshold: 2}
	create(live)
	lp := waitPodIn(t, ctx, client, ns, "live", "Ready through its readiness probe", podReady)
	noProxy := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	resp, err := noProxy.Get("http://" + net.JoinHostPort(lp.Status.PodIP, "8080") + "/fail")
	if err != nil {
		t.Fatalf("GET /fail from the node: %v", err)
	}
	resp.Body.Close()
	waitPodIn(t, ctx, client, ns, "live", "restarted by its liveness probe and Ready again", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].Ready && podReady(p)
	})

	// The kubelet API: exec (SPDY, proxied to the runtime's streaming
	// server) and logs, with a client certificate.
	kubeletAPI := &rest.Config{Host: "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort)),
		TLSClientConfig: rest.TLSClientConfig{Insecure: true, CertData: clientCert.CertPEM, KeyData: clientCert.KeyPEM}}
	execURL, _ := url.Parse(kubeletAPI.Host + "/exec/" + ns + "/live/main?command=/workload&command=print&command=exec-check&output=1&error=1")
	ex, err := remotecommand.NewSPDYExecutor(kubeletAPI, "POST", execURL)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatalf("exec through the kubelet API: %v (stderr %q)", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "exec-check") {
		t.Errorf("exec output %q", stdout.String())
	}
	tr, err := rest.TransportFor(kubeletAPI)
	if err != nil {
		t.Fatal(err)
	}
	logsResp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(kubeletAPI.Host + "/containerLogs/" + ns + "/live/main?previous=true")
	if err != nil {
		t.Fatal(err)
	}
	logsBody, _ := io.ReadAll(logsResp.Body)
	logsResp.Body.Close()
	if logsResp.StatusCode != http.StatusOK {
		t.Errorf("logs of the previous instance: %d %s", logsResp.StatusCode, logsBody)
	}

	// Crash loop.
	create(pod("crash", corev1.RestartPolicyAlways, "exit", "--code", "1"))
	sawBackoff := false
	waitPodIn(t, ctx, client, ns, "crash", "restartCount ≥ 2 and CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 {
			return false
		}
		if w := cs[0].State.Waiting; w != nil && w.Reason == kubelet.ReasonCrashLoopBackOff {
			sawBackoff = true
			if lt := cs[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 {
				t.Errorf("crash lastState %+v", cs[0].LastTerminationState)
			}
		}
		return sawBackoff && cs[0].RestartCount >= 2
	})

	// A command that does not exist: the start fails (the runtime reports
	// the instance exited 128, StartError, as containerd does) and the
	// container backs off like a crashing one; it never runs.
	nocmd := pod("nocmd", corev1.RestartPolicyAlways)
	nocmd.Spec.Containers[0].Command = []string{"/does-not-exist"}
	create(nocmd)
	waitPodIn(t, ctx, client, ns, "nocmd", "a failed start backing off", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Running != nil {
			return false
		}
		w, last := cs[0].State.Waiting, cs[0].LastTerminationState.Terminated
		return w != nil && (w.Reason == kubelet.ReasonRunContainerError || w.Reason == kubelet.ReasonCrashLoopBackOff) &&
			last != nil && last.ExitCode != 0 && cs[0].RestartCount >= 1
	})

	// Restart policy Never, exit 0.
	create(pod("once", corev1.RestartPolicyNever, "exit", "--code", "0"))
	once := waitPodIn(t, ctx, client, ns, "once", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if cs := once.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.Reason != "Completed" || cs[0].RestartCount != 0 {
		t.Errorf("once container statuses %+v", cs)
	}

	// Env and volumes: a configMap as env and as files, an emptyDir, the
	// downward API; the container's log shows what it saw.
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"greeting": "hello"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	files := pod("files", corev1.RestartPolicyNever)
	c := &files.Spec.Containers[0]
	c.Image = rtsuite.BusyboxImage
	c.Command = []string{"sh", "-c", `cat /etc/cfg/greeting; echo " $GREETING $MY_NAME $MY_IP"; echo scratch > /scratch/x && cat /scratch/x; cat /podinfo/name; echo; cat /scratch/order`}
	// Two init containers, in order, each exiting 0 before the next.
	for i, word := range []string{"first", "second"} {
		files.Spec.InitContainers = append(files.Spec.InitContainers, corev1.Container{
			Name: "init" + strconv.Itoa(i), Image: rtsuite.BusyboxImage,
			Command:      []string{"sh", "-c", "echo " + word + " >> /scratch/order"},
			VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
		})
	}
	c.Env = []corev1.EnvVar{
		{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "greeting"}}},
		{Name: "MY_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "scratch", MountPath: "/scratch"}, {Name: "podinfo", MountPath: "/podinfo"}}
	files.Spec.Volumes = []corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
	}
	create(files)
	fp := waitPodIn(t, ctx, client, ns, "files", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	logPath := filepath.Join(root, "kubelet", "logs", ns+"_files_"+string(fp.UID), "main", "0.log")
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(string(logged), "F first"), strings.Index(string(logged), "F second"); i < 0 || j < i {
		t.Errorf("init containers did not run in order:\n%s", logged)
	}
	if ics := fp.Status.InitContainerStatuses; len(ics) != 2 || ics[0].State.Terminated == nil || ics[1].State.Terminated == nil || ics[0].State.Terminated.ExitCode != 0 {
		t.Errorf("init container statuses %+v", ics)
	}
	for _, want := range []string{" stdout F hello hello files " + fp.Status.PodIP + "\n", " stdout F scratch\n", " stdout F files\n", " stdout F first\n", " stdout F second\n"} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}

	// Graceful deletion: the pause container exits on SIGTERM, long
	// before the 30 s grace period ends; the kubelet then deletes the
	// object for good.
	webUID := web.UID
	if err := client.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitFor(t, ctx, "web deleted", func() (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if d := time.Since(deleted); d > 30*time.Second {
		t.Errorf("web took %s to go, more than its grace period", d)
	}
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{kubelet.LabelPodUID: string(webUID)}})
	if err != nil || len(sbs) != 0 {
		t.Errorf("web's sandboxes left in the runtime: %v, %v", sbs, err)
	}

	// Termination in order: the preStop hook runs, then SIGTERM, then
	// SIGKILL when terminationGracePeriodSeconds (3 s) ends — long before
	// the 60 s the container would take.
	hostDir := t.TempDir()
	slow := pod("slow", corev1.RestartPolicyAlways, "sigterm-delay", "--seconds", "60")
	slow.Spec.TerminationGracePeriodSeconds = ptrTo(int64(3))
	slow.Spec.Containers = append(slow.Spec.Containers, corev1.Container{
		Name: "hook", Image: rtsuite.BusyboxImage, Command: []string{"sleep", "3600"},
		VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host"}},
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"sh", "-c", "echo bye > /host/prestop"}}}},
	})
	slow.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}
	create(slow)
	sp := waitPodIn(t, ctx, client, ns, "slow", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && podReady(p) })
	if err := client.CoreV1().Pods(ns).Delete(ctx, "slow", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "slow deleted", func() (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "slow", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if b, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(b) != "bye\n" {
		t.Errorf("preStop hook did not run: %q, %v", b, err)
	}
	slowLog, err := os.ReadFile(filepath.Join(root, "kubelet", "logs", ns+"_slow_"+string(sp.UID), "main", "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(slowLog), "got the signal") || strings.Contains(string(slowLog), "sigterm-delay: exiting") {
		t.Errorf("want SIGTERM first and SIGKILL at the end of the grace period; the container logged:\n%s", slowLog)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitPod(t *testing.T, ctx context.Context, client kubernetes.Interface, name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	return waitPodIn(t, ctx, client, "default", name, what, ok)
}

func waitPodIn(t *testing.T, ctx context.Context, client kubernetes.Interface, namespace, name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		return ok(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s: waiting for %s: %v; status %+v", name, what, err, last.Status)
	}
	return last
}

func ptrTo[T any](v T) *T { return &v }
