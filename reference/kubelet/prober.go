package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeUserAgent is the User-Agent of HTTP probes, upstream's form.
const probeUserAgent = "kube-probe/1.37"

// prober runs the probes of running containers, one goroutine per
// container and probe kind (upstream's probe workers), and keeps their
// verdicts for the pod workers.
type prober struct {
	k *Kubelet

	mu       sync.Mutex                                         // guards the maps
	workers  map[probeKey]chan struct{}                         // closed to stop a worker
	verdicts map[types.UID]map[string]map[ProbeKind]ProbeResult // pod UID → container ID → kind
}

type probeKey struct {
	id   string
	kind ProbeKind
}

func newProber(k *Kubelet) *prober {
	return &prober{k: k, workers: map[probeKey]chan struct{}{}, verdicts: map[types.UID]map[string]map[ProbeKind]ProbeResult{}}
}

// results are the pod's current probe verdicts.
func (p *prober) results(uid types.UID) ProbeResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProbeResultsOf(p.verdicts[uid])
}

// update starts a worker for each probe of each running container of pod
// that has none, and stops the workers (and forgets the verdicts) of
// containers that no longer run. pod nil (gone from the API) or being
// deleted stops them all.
func (p *prober) update(ctx context.Context, uid types.UID, pod *corev1.Pod, obs ObservedPod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := map[string]bool{}
	if pod != nil && pod.DeletionTimestamp == nil {
		podIP := ""
		if sb := obs.Sandbox(); sb != nil && len(sb.IPs) > 0 {
			podIP = sb.IPs[0]
		}
		if pod.Spec.HostNetwork {
			if ips := p.k.hostIPs(); len(ips) > 0 {
				podIP = ips[0]
			}
		}
		for _, c := range obs.Containers {
			if c.State != StateRunning {
				continue
			}
			spec := containerSpec(pod, c.Name)
			if spec == nil {
				continue
			}
			for kind, pr := range map[ProbeKind]*corev1.Probe{Readiness: spec.ReadinessProbe, Liveness: spec.LivenessProbe, Startup: spec.StartupProbe} {
				if pr == nil {
					continue
				}
				live[c.ID] = true
				key := probeKey{c.ID, kind}
				if _, ok := p.workers[key]; ok {
					continue
				}
				stop := make(chan struct{})
				p.workers[key] = stop
				p.setLocked(uid, c.ID, kind, InitialCounter(kind).Result)
				w := probeWorker{p: p, uid: uid, pod: pod.DeepCopy(), container: spec.DeepCopy(), id: c.ID, kind: kind,
					probe: pr.DeepCopy(), podIP: podIP, started: c.StartedAt, stop: stop}
				go w.run(ctx)
			}
		}
	}
	for key, stop := range p.workers {
		if p.verdicts[uid][key.id] != nil && !live[key.id] {
			close(stop)
			delete(p.workers, key)
		}
	}
	for id := range p.verdicts[uid] {
		if !live[id] {
			delete(p.verdicts[uid], id)
		}
	}
	if len(p.verdicts[uid]) == 0 {
		delete(p.verdicts, uid)
	}
}

func (p *prober) setLocked(uid types.UID, id string, kind ProbeKind, r ProbeResult) {
	if p.verdicts[uid] == nil {
		p.verdicts[uid] = map[string]map[ProbeKind]ProbeResult{}
	}
	if p.verdicts[uid][id] == nil {
		p.verdicts[uid][id] = map[ProbeKind]ProbeResult{}
	}
	p.verdicts[uid][id][kind] = r
}

// set records a verdict, unless the worker was stopped meanwhile.
func (p *prober) set(w *probeWorker, r ProbeResult) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.workers[probeKey{w.id, w.kind}] != w.stop {
		return false
	}
	p.setLocked(w.uid, w.id, w.kind, r)
	return true
}

// startupPassed reports whether container id has no startup probe or it
// succeeded.
func (p *prober) startupPassed(w *probeWorker) bool {
	if w.container.StartupProbe == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verdicts[w.uid][w.id][Startup] == ProbeSuccess
}

// probeWorker probes one container with one probe until stopped, its
// verdict is final (startup success; liveness or startup failure: the
// container is killed and its successor gets new workers), or ctx ends.
type probeWorker struct {
	p         *prober
	uid       types.UID
	pod       *corev1.Pod
	container *corev1.Container
	id        string
	kind      ProbeKind
	probe     *corev1.Probe
	podIP     string
	started   time.Time
	stop      chan struct{}
}

func (w *probeWorker) run(ctx context.Context) {
	t := TimingOf(w.probe)
	wait := func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-w.stop:
			return false
		case <-timer.C:
			return true
		}
	}
	if !wait(max(time.Until(w.started.Add(t.InitialDelay)), 0)) {
		return
	}
	counter := InitialCounter(w.kind)
	for {
		if w.kind == Startup || w.p.startupPassed(w) {
			err := RunProbe(ctx, w.p.k.rt, w.probe, w.container, w.id, w.podIP, t.Timeout)
			ok := err == nil
			if !ok && ctx.Err() == nil {
				w.p.k.event(w.pod, w.container.Name, corev1.EventTypeWarning, EventUnhealthy, "%s probe failed: %v", w.kind, err)
			}
			next := counter.Record(t, ok)
			if next.Result != counter.Result {
				if !w.p.set(w, next.Result) {
					return
				}
				w.p.k.kick(ctx, w.uid, w.pod.Namespace, w.pod.Name)
			}
			counter = next
			if (w.kind == Startup && counter.Result == ProbeSuccess) || (w.kind != Readiness && counter.Result == ProbeFailure) {
				return
			}
		}
		if !wait(t.Period) {
			return
		}
	}
}

// Execer runs a command in a container (CRI ExecSync).
type Execer interface {
	// ExecSync runs cmd in container id and waits for it; a non-zero exit
	// is an error.
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error)
}

// RunProbe runs probe p of container c (runtime ID id, pod IP podIP) once,
// within timeout, as upstream's prober: exec through ExecSync (exit 0
// succeeds); httpGet from the node to the pod IP (or host), status
// 200–399 succeeds, redirects followed; tcpSocket succeeds when it
// connects; grpc asks the standard health service for SERVING. A nil
// error is success.
func RunProbe(ctx context.Context, rt Execer, p *corev1.Probe, c *corev1.Container, id, podIP string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		_, _, err := rt.ExecSync(ctx, id, p.Exec.Command, timeout)
		return err
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := probePort(g.Port, c)
		if err != nil {
			return err
		}
		host := g.Host
		if host == "" {
			host = podIP
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		ref, err := url.Parse(path)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.ResolveReference(ref).String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", probeUserAgent)
		req.Header.Set("Accept", "*/*")
		for _, h := range g.HTTPHeaders {
			if strings.EqualFold(h.Name, "host") {
				req.Host = h.Value
				continue
			}
			req.Header.Add(h.Name, h.Value)
		}
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as upstream: probes do not verify
			DisableKeepAlives: true, Proxy: nil,
		}}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := probePort(p.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.GRPC != nil:
		conn, err := grpc.NewClient(net.JoinHostPort(podIP, strconv.Itoa(int(p.GRPC.Port))), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("GRPC probe: service unhealthy (responded with %q)", resp.GetStatus())
		}
		return nil
	}
	return errors.New("probe has no handler")
}

// probePort resolves a probe's port: a number, or the name of one of the
// container's ports.
func probePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in container %q", p.StrVal, c.Name)
}
