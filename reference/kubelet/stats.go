package kubelet

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Summary is the kubelet's /stats/summary, the JSON of upstream's
// k8s.io/kubelet/pkg/apis/stats/v1alpha1 Summary restricted to CPU and
// memory of the node, its pods and their containers.
type Summary struct {
	// Node is the node's usage.
	Node NodeStats `json:"node"`
	// Pods are the running pods' usage.
	Pods []PodStats `json:"pods"`
}

// NodeStats is a node's usage.
type NodeStats struct {
	// NodeName is the node.
	NodeName string `json:"nodeName"`
	// StartTime is when the node booted.
	StartTime metav1.Time `json:"startTime"`
	// CPU and Memory are its usage.
	CPU    *CPUStats    `json:"cpu,omitempty"`
	Memory *MemoryStats `json:"memory,omitempty"`
}

// PodStats is a pod's usage.
type PodStats struct {
	// PodRef names the pod.
	PodRef PodReference `json:"podRef"`
	// StartTime is when its sandbox was created.
	StartTime metav1.Time `json:"startTime"`
	// Containers are its containers' usage.
	Containers []ContainerStats `json:"containers"`
	// CPU and Memory are the pod's usage (its sandbox's).
	CPU    *CPUStats    `json:"cpu,omitempty"`
	Memory *MemoryStats `json:"memory,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	// Name, Namespace and UID are the pod's.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// ContainerStats is a container's usage.
type ContainerStats struct {
	// Name is the container's name in the pod spec.
	Name string `json:"name"`
	// StartTime is when it was created.
	StartTime metav1.Time `json:"startTime"`
	// CPU and Memory are its usage.
	CPU    *CPUStats    `json:"cpu,omitempty"`
	Memory *MemoryStats `json:"memory,omitempty"`
}

// CPUStats is CPU usage.
type CPUStats struct {
	// Time is when it was sampled.
	Time metav1.Time `json:"time"`
	// UsageNanoCores is the recent rate, when known.
	UsageNanoCores *uint64 `json:"usageNanoCores,omitempty"`
	// UsageCoreNanoSeconds is the cumulative usage.
	UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats is memory usage.
type MemoryStats struct {
	// Time is when it was sampled.
	Time metav1.Time `json:"time"`
	// AvailableBytes is what is left (node only).
	AvailableBytes *uint64 `json:"availableBytes,omitempty"`
	// UsageBytes and WorkingSetBytes are the usage.
	UsageBytes      *uint64 `json:"usageBytes,omitempty"`
	WorkingSetBytes *uint64 `json:"workingSetBytes,omitempty"`
}

func cpuOf(c *runtimeapi.CpuUsage) *CPUStats {
	if c == nil {
		return nil
	}
	s := &CPUStats{Time: metav1.NewTime(time.Unix(0, c.GetTimestamp()))}
	if c.GetUsageCoreNanoSeconds() != nil {
		s.UsageCoreNanoSeconds = ptrTo(c.GetUsageCoreNanoSeconds().GetValue())
	}
	if c.GetUsageNanoCores() != nil {
		s.UsageNanoCores = ptrTo(c.GetUsageNanoCores().GetValue())
	}
	return s
}

func memOf(m *runtimeapi.MemoryUsage) *MemoryStats {
	if m == nil {
		return nil
	}
	s := &MemoryStats{Time: metav1.NewTime(time.Unix(0, m.GetTimestamp()))}
	if m.GetUsageBytes() != nil {
		s.UsageBytes = ptrTo(m.GetUsageBytes().GetValue())
	}
	if m.GetWorkingSetBytes() != nil {
		s.WorkingSetBytes = ptrTo(m.GetWorkingSetBytes().GetValue())
	}
	return s
}

// BuildSummary assembles a Summary from the runtime's sandbox and
// container stats (CRI), keeping the newest sandbox of each pod and the
// containers of that sandbox, sorted by namespace, name and container.
func BuildSummary(node NodeStats, sandboxes []*runtimeapi.PodSandboxStats, containers []*runtimeapi.ContainerStats, created map[string]time.Time) Summary {
	byPod := map[string]*runtimeapi.PodSandboxStats{}
	for _, s := range sandboxes {
		uid := s.GetAttributes().GetMetadata().GetUid()
		if cur, ok := byPod[uid]; !ok || s.GetAttributes().GetMetadata().GetAttempt() > cur.GetAttributes().GetMetadata().GetAttempt() {
			byPod[uid] = s
		}
	}
	sum := Summary{Node: node, Pods: []PodStats{}}
	for _, s := range byPod {
		md := s.GetAttributes().GetMetadata()
		ps := PodStats{PodRef: PodReference{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()},
			StartTime: metav1.NewTime(created[s.GetAttributes().GetId()]), Containers: []ContainerStats{},
			CPU: cpuOf(s.GetLinux().GetCpu()), Memory: memOf(s.GetLinux().GetMemory())}
		for _, c := range containers {
			if c.GetAttributes().GetLabels()[LabelPodUID] != md.GetUid() {
				continue
			}
			name := c.GetAttributes().GetLabels()[LabelContainerName]
			if name == "" {
				name = c.GetAttributes().GetMetadata().GetName()
			}
			ps.Containers = append(ps.Containers, ContainerStats{Name: name, StartTime: metav1.NewTime(created[c.GetAttributes().GetId()]),
				CPU: cpuOf(c.GetCpu()), Memory: memOf(c.GetMemory())})
		}
		sort.Slice(ps.Containers, func(i, j int) bool { return ps.Containers[i].Name < ps.Containers[j].Name })
		sum.Pods = append(sum.Pods, ps)
	}
	sort.Slice(sum.Pods, func(i, j int) bool {
		a, b := sum.Pods[i].PodRef, sum.Pods[j].PodRef
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return sum
}

// machineStats reads the node's CPU (/proc/stat, all CPUs) and memory
// (/proc/meminfo) usage.
func machineStats(node string, now time.Time) NodeStats {
	ns := NodeStats{NodeName: node}
	if f, err := os.Open("/proc/stat"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 8 && fields[0] == "cpu" {
				var ticks uint64
				for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
					v, _ := strconv.ParseUint(fields[i], 10, 64)
					ticks += v
				}
				ns.CPU = &CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: ptrTo(ticks * uint64(time.Second/100))}
			}
			if len(fields) == 2 && fields[0] == "btime" {
				if bt, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
					ns.StartTime = metav1.NewTime(time.Unix(bt, 0))
				}
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		vals := map[string]uint64{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 {
				v, _ := strconv.ParseUint(fields[1], 10, 64)
				vals[strings.TrimSuffix(fields[0], ":")] = v * 1024
			}
		}
		f.Close()
		if total, ok := vals["MemTotal"]; ok {
			avail := vals["MemAvailable"]
			used := total - avail
			ns.Memory = &MemoryStats{Time: metav1.NewTime(now), AvailableBytes: &avail, UsageBytes: ptrTo(total - vals["MemFree"]), WorkingSetBytes: &used}
		}
	}
	return ns
}

func (k *Kubelet) serveStatsSummary(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sbs, err := k.rt.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{})
	if err != nil {
		streamError(w, err)
		return
	}
	cs, err := k.rt.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		streamError(w, err)
		return
	}
	created := map[string]time.Time{}
	if list, err := k.rt.ListPodSandbox(ctx, nil); err == nil {
		for _, s := range list {
			created[s.GetId()] = time.Unix(0, s.GetCreatedAt())
		}
	}
	if list, err := k.rt.ListContainers(ctx, nil); err == nil {
		for _, c := range list {
			created[c.GetId()] = time.Unix(0, c.GetCreatedAt())
		}
	}
	sum := BuildSummary(machineStats(k.cfg.NodeName, k.now()), sbs, cs, created)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(sum)
}
