package process

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nftTable lists the runtime's host port table ("" when it does not exist).
func nftTable(t *testing.T, r *Runtime) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "ip", hostPortTable(r.Instance())).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file") {
			return ""
		}
		t.Fatalf("nft list table: %v: %s", err, out)
	}
	return string(out)
}

// TestHostPort: a sandbox's host port answers on 127.0.0.1 (through the
// output chain's DNAT) with its container's server; a second sandbox asking
// for the same port gets AlreadyExists; removing the sandbox removes its
// rules, and the last one the table.
func TestHostPort(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	hostPort := int32(20000 + rand.IntN(20000))
	cfg := sandboxConfig("hp")
	cfg.LogDirectory = t.TempDir()
	cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort}}
	sb, err := r.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	startContainer(t, r, sb, cfg, containerConfig("web", "sh", "-c", "mkdir -p /www && echo hello-from-hostport > /www/index.html && exec httpd -f -p 8080 -h /www"))
	if tbl := nftTable(t, r); !strings.Contains(tbl, fmt.Sprintf("tcp dport %d", hostPort)) || !strings.Contains(tbl, sb) {
		t.Errorf("table after RunPodSandbox lacks the mapping:\n%s", tbl)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)
	var body string
	client := &http.Client{Timeout: 2 * time.Second}
	for i := 0; i < 200 && body == ""; i++ {
		resp, err := client.Get(url)
		if err != nil {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	if body != "hello-from-hostport\n" {
		t.Errorf("GET %s: %q", url, body)
	}

	// A second sandbox on the same host port (any address) conflicts; one on
	// another port does not, and keeps the table when the first goes.
	other := sandboxConfig("hp2")
	other.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: hostPort, HostIp: "127.0.0.1"}}
	_, err = r.RunPodSandbox(ctx, other, "")
	wantCode(t, "a second sandbox on the same host port", err, codes.AlreadyExists)
	other.PortMappings[0].Protocol = runtimeapi.Protocol_UDP
	sb2, err := r.RunPodSandbox(ctx, other, "")
	if err != nil {
		t.Fatalf("same port number over UDP: %v", err)
	}
	bad := sandboxConfig("hp3")
	bad.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 70000}}
	_, err = r.RunPodSandbox(ctx, bad, "")
	wantCode(t, "host port out of range", err, codes.InvalidArgument)

	if err := r.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	tbl := nftTable(t, r)
	if strings.Contains(tbl, sb) || strings.Contains(tbl, "tcp dport") || !strings.Contains(tbl, sb2) {
		t.Errorf("table after removing the first sandbox:\n%s", tbl)
	}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s answers after RemovePodSandbox", url)
	}
	// The port is free again.
	again := sandboxConfig("hp4")
	again.PortMappings = cfg.PortMappings
	sb3, err := r.RunPodSandbox(ctx, again, "")
	if err != nil {
		t.Fatalf("host port after its sandbox went: %v", err)
	}
	if err := r.StopPodSandbox(ctx, sb3); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(nftTable(t, r), sb3) {
		t.Error("rules stay after StopPodSandbox")
	}
	for _, id := range []string{sb2, sb3} {
		if err := r.RemovePodSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if tbl := nftTable(t, r); tbl != "" {
		t.Errorf("table left after the last sandbox:\n%s", tbl)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}
