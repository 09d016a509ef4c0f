package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBenchScheduler runs `kubelab bench scheduler` on a small workloads
// file and checks the placement figures it reports (never its speed).
func TestBenchScheduler(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	workloads := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(workloads, []byte(`workloads:
- name: spread
  nodes: {count: 9, cpu: "4", memory: 32Gi, pods: 110, zones: 3}
  pods: {count: 60, cpu: 100m, memory: 500Mi, spreadMaxSkew: 1}
- name: preempt
  nodes: {count: 4, cpu: "4", memory: 32Gi, pods: 110}
  initPods: {perNode: 4, cpu: "1", memory: 500Mi, priority: 10}
  pods: {count: 4, cpu: "1", memory: 500Mi, priority: 1000}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.json")
	cmd := exec.Command(bin, "bench", "scheduler", "--workloads", workloads, "--json", out, "--qps", "200")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubelab bench scheduler: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rs []struct {
		Workload           string  `json:"workload"`
		QPS                float32 `json:"schedulerClientQPS"`
		Pods, Bound        int
		OvercommittedNodes int `json:"overcommittedNodes"`
		ZoneSkew           int `json:"zoneSkew"`
		Preempted          int `json:"preemptedInitPods"`
		Error              string
	}
	if err := json.Unmarshal(data, &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("want 2 results, got %s", data)
	}
	for _, r := range rs {
		if r.Error != "" || r.Bound != r.Pods || r.OvercommittedNodes != 0 || r.QPS != 200 {
			t.Errorf("%s: %+v", r.Workload, r)
		}
	}
	if rs[0].ZoneSkew > 1 {
		t.Errorf("spread: zone skew %d > maxSkew 1", rs[0].ZoneSkew)
	}
	if rs[1].Preempted != 4 {
		t.Errorf("preempt: %d init pods preempted, want 4 (one per high-priority pod)", rs[1].Preempted)
	}
}
