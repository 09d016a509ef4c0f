package kubelet

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Upstream's heartbeat defaults (KubeletConfiguration).
const (
	// DefaultNodeStatusUpdateFrequency is how often the node's status is
	// computed, and posted when it changed.
	DefaultNodeStatusUpdateFrequency = 10 * time.Second
	// DefaultNodeStatusReportFrequency is how often an unchanged status
	// is posted anyway.
	DefaultNodeStatusReportFrequency = 5 * time.Minute
	// DefaultLeaseDuration is the node Lease's leaseDurationSeconds.
	DefaultLeaseDuration = 40 * time.Second
	// DefaultMaxPods is the pods capacity.
	DefaultMaxPods = 110
	// NodeLeaseNamespace holds the nodes' Leases.
	NodeLeaseNamespace = "kube-node-lease"
)

// Node condition reasons, upstream's.
const (
	// ReasonKubeletReady: the node is Ready.
	ReasonKubeletReady = "KubeletReady"
	// ReasonKubeletNotReady: the runtime or its network is not ready.
	ReasonKubeletNotReady = "KubeletNotReady"
)

// NodeFacts are what ComputeNodeStatus derives a Node's status from.
type NodeFacts struct {
	// Capacity and Allocatable are the node's resources.
	Capacity, Allocatable corev1.ResourceList
	// Addresses are the node's addresses (InternalIP, Hostname).
	Addresses []corev1.NodeAddress
	// Info is the system info (versions, IDs, OS).
	Info corev1.NodeSystemInfo
	// RuntimeErr, when not empty, says why the runtime is not ready (its
	// RuntimeReady or NetworkReady condition is false, or its Status call
	// failed); the node is then NotReady with this message.
	RuntimeErr string
	// Now is the heartbeat time.
	Now time.Time
	// KubeletPort, when not 0, is the kubelet API's port, published as
	// status.daemonEndpoints.kubeletEndpoint.port (where the API server
	// proxies pods/log, exec, attach, portforward and nodes/proxy).
	KubeletPort int32
}

// ComputeNodeStatus derives a Node's status from facts, keeping the
// transition times of conditions whose status did not change from old
// (the Node's current status) and the other fields kubelab does not own
// (images, volumes) as they are; the daemon endpoint is f.KubeletPort's
// when set.
func ComputeNodeStatus(old corev1.NodeStatus, f NodeFacts) corev1.NodeStatus {
	st := *old.DeepCopy()
	st.Capacity, st.Allocatable = f.Capacity.DeepCopy(), f.Allocatable.DeepCopy()
	st.Addresses = append([]corev1.NodeAddress(nil), f.Addresses...)
	st.NodeInfo = f.Info
	st.Phase = ""
	if f.KubeletPort > 0 {
		st.DaemonEndpoints.KubeletEndpoint.Port = f.KubeletPort
	}
	now := apiTime(f.Now)
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == s {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	ready := cond(corev1.NodeReady, corev1.ConditionTrue, ReasonKubeletReady, "kubelet is posting ready status")
	if f.RuntimeErr != "" {
		ready = cond(corev1.NodeReady, corev1.ConditionFalse, ReasonKubeletNotReady, f.RuntimeErr)
	}
	st.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}
	return st
}

// NodeStatusNeedsPost reports whether the status computed at now must be
// posted: when it differs from the posted one in anything but heartbeat
// times, or when the last post is reportFrequency old.
func NodeStatusNeedsPost(posted, computed corev1.NodeStatus, lastPost, now time.Time, reportFrequency time.Duration) bool {
	if now.Sub(lastPost) >= reportFrequency {
		return true
	}
	strip := func(s corev1.NodeStatus) corev1.NodeStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	return !equality.Semantic.DeepEqual(strip(posted), strip(computed))
}

// NodeLabels are the well-known labels the kubelet sets on its Node.
func NodeLabels(hostname string) map[string]string {
	return map[string]string{
		corev1.LabelHostname:   hostname,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
}

// MachineCapacity is what this machine has: CPUs, memory from
// /proc/meminfo, ephemeral storage of the file system holding root (not
// reported when root is empty), and maxPods pods.
func MachineCapacity(root string, maxPods int) (corev1.ResourceList, error) {
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
	if root != "" {
		if n, err := fsSize(root); err == nil {
			rl[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(n, resource.BinarySI)
		}
	}
	return rl, nil
}

// memTotal reads MemTotal (bytes) from a meminfo file.
func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal %q: %w", path, fields[1], err)
			}
			return kb * 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal", path)
}

// SystemInfo is what the node knows about itself: machine and boot IDs,
// kernel, OS image, architecture, and the given versions.
func SystemInfo(kubeletVersion, runtimeVersion string) corev1.NodeSystemInfo {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	osImage := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				osImage = strings.Trim(v, `"`)
			}
		}
	}
	return corev1.NodeSystemInfo{
		MachineID:               read("/etc/machine-id"),
		BootID:                  read("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           read("/proc/sys/kernel/osrelease"),
		OSImage:                 osImage,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
		ContainerRuntimeVersion: runtimeVersion,
		KubeletVersion:          kubeletVersion,
	}
}
