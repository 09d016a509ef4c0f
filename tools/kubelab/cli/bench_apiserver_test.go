package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/reference/apiserver/apiserverbench"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

// tiny are the size flags of a bench that takes a second or two.
var tiny = []string{"--pods", "25", "--clients", "3", "--watchers", "7", "--watch-events", "2", "--lists", "2", "--page-size", "10"}

// checkTiny checks that r accounts for every request of a tiny bench.
func checkTiny(t *testing.T, r *apiserverbench.Result) {
	t.Helper()
	if r.Create.Pods != 25 || r.Create.Clients != 3 || r.Create.Latency.N != 25 {
		t.Errorf("%s: create %+v", r.Target.Store, r.Create)
	}
	if r.List.Items != 25 || r.List.Latency.N != 2 || r.ListPaged.Items != 25 || r.ListPaged.Pages != 3 || r.ListPaged.PageSize != 10 {
		t.Errorf("%s: list %+v, paged %+v", r.Target.Store, r.List, r.ListPaged)
	}
	if r.Watch.Watchers != 7 || r.Watch.Events != 2 || r.Watch.Delivered != 14 || r.Watch.Latency.N != 14 {
		t.Errorf("%s: watch %+v", r.Target.Store, r.Watch)
	}
	if r.Config.QPS != 123 || r.Config.Burst != 456 {
		t.Errorf("%s: client rate limit %v/%d, want the flags' 123/456", r.Target.Store, r.Config.QPS, r.Config.Burst)
	}
}

// TestBenchAPIServerStores benches kubelab's API server on the memory store
// and on embedded etcd (data dir on the --data-root given) at a tiny size
// and checks the table and the JSON.
func TestBenchAPIServerStores(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	root := t.TempDir()
	args := append([]string{"bench", "apiserver", "--store", "memory,etcd", "--data-root", root, "--json", jsonFile, "--qps", "123", "--burst", "456"}, tiny...)
	code, out, errOut, _ := kubelab(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"| pod creates/s (3 clients)", "| store ", " memory |", "etcd (data on ", root, "QPS 123, burst 456", "watch delivery to 7 watchers"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "kubelab etcd: created 25 pods") {
		t.Errorf("stderr lacks the progress:\n%s", errOut)
	}
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var results []*apiserverbench.Result
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(results) != 2 || results[0].Target.Store != "memory" || !strings.HasPrefix(results[1].Target.Store, "etcd (data on ") {
		t.Fatalf("results: %s", data)
	}
	for _, r := range results {
		checkTiny(t, r)
	}
	// --from-json prints the saved results again, side by side.
	code, again, errOut, _ := kubelab(t, "bench", "apiserver", "--from-json", jsonFile+","+jsonFile)
	if code != cli.ExitOK || strings.Count(strings.SplitN(again, "\n", 2)[0], "kubelab") != 4 || !strings.Contains(again, "watch delivery to 7 watchers") {
		t.Errorf("--from-json: exit %d\n%s\n%s", code, again, errOut)
	}
	// The data dirs are gone.
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Errorf("left in the data root: %v", left)
	}
}

// TestBenchAPIServerKubeconfig benches a running server through its
// kubeconfig, as it would an upstream kube-apiserver.
func TestBenchAPIServerKubeconfig(t *testing.T) {
	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var serverOut bytes.Buffer
	go func() {
		done <- cli.RunAPIServer(ctx, builtin.Registry(), cli.APIServerOptions{Store: "memory", Listen: "127.0.0.1:0", Kubeconfig: kcfg}, &serverOut, func(url string) { ready <- url })
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("RunAPIServer: %v\n%s", err, serverOut.String())
	}
	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	args := append([]string{"bench", "apiserver", "--kubeconfig", kcfg, "--name", "other", "--store-label", "somewhere", "--json", jsonFile, "--qps", "123", "--burst", "456"}, tiny...)
	code, out, errOut, _ := kubelab(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "| other ") || !strings.Contains(out, "somewhere") {
		t.Errorf("stdout:\n%s", out)
	}
	var results []*apiserverbench.Result
	data, _ := os.ReadFile(jsonFile)
	if err := json.Unmarshal(data, &results); err != nil || len(results) != 1 {
		t.Fatalf("%v\n%s", err, data)
	}
	checkTiny(t, results[0])
}

func TestBenchAPIServerRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown store", []string{"--store", "nope"}, `"nope"`},
		{"store and kubeconfig", []string{"--store", "memory", "--kubeconfig", "/x"}, "exclude each other"},
		{"missing kubeconfig", []string{"--kubeconfig", "/no/such/kubeconfig"}, "/no/such/kubeconfig"},
		{"no pods", []string{"--pods", "0"}, "pods must be at least 1"},
		{"no store", []string{"--store", ""}, "no store"},
		{"missing JSON", []string{"--from-json", "/no/such.json"}, "/no/such.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut, _ := kubelab(t, append([]string{"bench", "apiserver"}, c.args...)...)
			if code != cli.ExitUsage || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q (want %q)\n%s", code, errOut, c.want, out)
			}
		})
	}
}
