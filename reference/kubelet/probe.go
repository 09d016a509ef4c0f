package kubelet

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ProbeKind is which of a container's three probes.
type ProbeKind int

// The probe kinds.
const (
	// Readiness gates the container's Ready.
	Readiness ProbeKind = iota
	// Liveness restarts the container when it fails.
	Liveness
	// Startup holds back the other two until it succeeds, and restarts
	// the container when it fails.
	Startup
)

// String names the kind as upstream's events do.
func (k ProbeKind) String() string { return [...]string{"Readiness", "Liveness", "Startup"}[k] }

// ProbeResult is a probe's current verdict.
type ProbeResult int

// Probe results.
const (
	// ProbeUnknown: not enough probes yet.
	ProbeUnknown ProbeResult = iota
	// ProbeSuccess: successThreshold consecutive successes.
	ProbeSuccess
	// ProbeFailure: failureThreshold consecutive failures.
	ProbeFailure
)

// ProbeTiming is a probe's timing and thresholds with upstream's defaults
// applied: initialDelaySeconds 0, periodSeconds 10, timeoutSeconds 1,
// successThreshold 1, failureThreshold 3.
type ProbeTiming struct {
	// InitialDelay is how long after the container starts the first probe
	// runs.
	InitialDelay time.Duration
	// Period is the time between probes.
	Period time.Duration
	// Timeout bounds one probe.
	Timeout time.Duration
	// SuccessThreshold and FailureThreshold are the consecutive results
	// that flip the verdict.
	SuccessThreshold, FailureThreshold int32
}

// TimingOf applies the defaults to p.
func TimingOf(p *corev1.Probe) ProbeTiming {
	t := ProbeTiming{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           time.Duration(p.PeriodSeconds) * time.Second,
		Timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		SuccessThreshold: p.SuccessThreshold,
		FailureThreshold: p.FailureThreshold,
	}
	if t.Period <= 0 {
		t.Period = 10 * time.Second
	}
	if t.Timeout <= 0 {
		t.Timeout = time.Second
	}
	if t.SuccessThreshold <= 0 {
		t.SuccessThreshold = 1
	}
	if t.FailureThreshold <= 0 {
		t.FailureThreshold = 3
	}
	return t
}

// ProbeCounter is a probe's state: the current verdict and the run of
// equal outcomes that leads to the next one.
type ProbeCounter struct {
	// Result is the verdict.
	Result ProbeResult
	// Successes and Failures count the current run of consecutive
	// outcomes (one of them is 0).
	Successes, Failures int32
}

// InitialCounter is a probe's state before it ran, as upstream: a liveness
// probe counts as succeeding until it fails, a readiness or startup probe
// as not yet succeeded.
func InitialCounter(k ProbeKind) ProbeCounter {
	if k == Liveness {
		return ProbeCounter{Result: ProbeSuccess}
	}
	return ProbeCounter{Result: ProbeUnknown}
}

// Record returns the state after one more outcome: the verdict flips to
// success after SuccessThreshold consecutive successes and to failure
// after FailureThreshold consecutive failures.
func (c ProbeCounter) Record(t ProbeTiming, ok bool) ProbeCounter {
	if ok {
		c.Successes, c.Failures = c.Successes+1, 0
		if c.Successes >= t.SuccessThreshold {
			c.Result = ProbeSuccess
		}
	} else {
		c.Successes, c.Failures = 0, c.Failures+1
		if c.Failures >= t.FailureThreshold {
			c.Result = ProbeFailure
		}
	}
	return c
}

// ProbeResultsOf turns the verdicts of a pod's probes, by container ID and
// kind, into the inputs of ComputePodActions and ComputePodStatus, as
// upstream reads them: ready when the readiness verdict is success;
// started when the startup verdict is success; killed when the liveness
// or the startup verdict is failure.
func ProbeResultsOf(verdicts map[string]map[ProbeKind]ProbeResult) ProbeResults {
	r := ProbeResults{Ready: map[string]bool{}, Started: map[string]bool{}, LivenessFailed: map[string]bool{}}
	for id, v := range verdicts {
		r.Ready[id] = v[Readiness] == ProbeSuccess
		r.Started[id] = v[Startup] == ProbeSuccess
		r.LivenessFailed[id] = v[Liveness] == ProbeFailure || v[Startup] == ProbeFailure
	}
	return r
}
