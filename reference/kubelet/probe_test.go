package kubelet

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestTimingOfDefaults(t *testing.T) {
	got := TimingOf(&corev1.Probe{})
	want := ProbeTiming{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	got = TimingOf(&corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 2, FailureThreshold: 1})
	want = ProbeTiming{InitialDelay: 5 * time.Second, Period: 2 * time.Second, Timeout: 3 * time.Second, SuccessThreshold: 2, FailureThreshold: 1}
	if got != want {
		t.Errorf("explicit %+v, want %+v", got, want)
	}
}

func TestProbeCounter(t *testing.T) {
	timing := ProbeTiming{SuccessThreshold: 2, FailureThreshold: 3}
	tests := []struct {
		name     string
		kind     ProbeKind
		outcomes []bool
		want     ProbeResult
	}{
		{"liveness starts as success", Liveness, nil, ProbeSuccess},
		{"readiness starts unknown", Readiness, nil, ProbeUnknown},
		{"startup starts unknown", Startup, nil, ProbeUnknown},
		{"one success is below successThreshold 2", Readiness, []bool{true}, ProbeUnknown},
		{"two successes reach it", Readiness, []bool{true, true}, ProbeSuccess},
		{"two failures are below failureThreshold 3", Liveness, []bool{false, false}, ProbeSuccess},
		{"three failures reach it", Liveness, []bool{false, false, false}, ProbeFailure},
		{"a success breaks the run of failures", Liveness, []bool{false, false, true, false, false}, ProbeSuccess},
		{"ready, then three failures: not ready", Readiness, []bool{true, true, false, false, false}, ProbeFailure},
		{"failed, then two successes: ready again", Readiness, []bool{false, false, false, true, true}, ProbeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := InitialCounter(tc.kind)
			for _, ok := range tc.outcomes {
				c = c.Record(timing, ok)
			}
			if c.Result != tc.want {
				t.Errorf("result %v, want %v (%+v)", c.Result, tc.want, c)
			}
		})
	}
}

func TestProbeResultsOf(t *testing.T) {
	r := ProbeResultsOf(map[string]map[ProbeKind]ProbeResult{
		"a": {Readiness: ProbeSuccess, Liveness: ProbeSuccess},
		"b": {Readiness: ProbeFailure, Liveness: ProbeFailure},
		"c": {Startup: ProbeFailure},
		"d": {Startup: ProbeSuccess},
	})
	if !r.Ready["a"] || r.Ready["b"] || r.LivenessFailed["a"] || !r.LivenessFailed["b"] || !r.LivenessFailed["c"] || !r.Started["d"] || r.Started["c"] {
		t.Errorf("results %+v", r)
	}
}

type execFunc func(cmd []string) error

func (f execFunc) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	return nil, nil, f(cmd)
}

func TestRunProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "yes" || r.UserAgent() != probeUserAgent {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok?x=1", http.StatusFound) })
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(gl) }()
	defer gs.Stop()
	gport := int32(gl.Addr().(*net.TCPAddr).Port)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	hdr := []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}
	httpProbe := func(path string, p intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: p, HTTPHeaders: hdr}}}
	}
	down := "down"
	tests := []struct {
		name  string
		probe *corev1.Probe
		ok    bool
	}{
		{"exec exit 0", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}, true},
		{"exec exit 1", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}}, false},
		{"httpGet 200", httpProbe("/ok", intstr.FromInt32(int32(port))), true},
		{"httpGet by port name", httpProbe("ok", intstr.FromString("http")), true},
		{"httpGet follows a redirect", httpProbe("/moved", intstr.FromInt32(int32(port))), true},
		{"httpGet 500", httpProbe("/bad", intstr.FromInt32(int32(port))), false},
		{"httpGet unknown port name", httpProbe("/ok", intstr.FromString("nope")), false},
		{"tcpSocket open", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}}, true},
		{"tcpSocket closed", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}}}, false},
		{"grpc serving", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: gport}}}, true},
		{"grpc not serving", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: gport, Service: &down}}}, false},
		{"no handler", &corev1.Probe{}, false},
	}
	exec := execFunc(func(cmd []string) error {
		if cmd[0] == "true" {
			return nil
		}
		return errors.New("exited with 1")
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := RunProbe(context.Background(), exec, tc.probe, c, "id", host, 5*time.Second)
			if (err == nil) != tc.ok {
				t.Errorf("RunProbe = %v, want success %v", err, tc.ok)
			}
		})
	}
}
