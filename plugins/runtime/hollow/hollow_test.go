package hollow

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTest(t *testing.T, opts Options) (*Runtime, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	opts.Now = c.now
	return New(opts), c
}

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: "uid-" + name},
		Labels:       map[string]string{"app": name},
		LogDirectory: "/var/log/pods/" + name,
	}
}

func ctrConfig(name, image string, annotations map[string]string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: name},
		Image:       &runtimeapi.ImageSpec{Image: image},
		Labels:      map[string]string{"ctr": name},
		Annotations: annotations,
		LogPath:     name + "/0.log",
	}
}

func code(err error) codes.Code { return status.Code(err) }

// runPod pulls busybox and runs a sandbox with one started container.
func runPod(t *testing.T, r *Runtime, name string, annotations map[string]string) (sid, cid string) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "busybox"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	sid, err := r.RunPodSandbox(ctx, podConfig(name), "")
	if err != nil {
		t.Fatal(err)
	}
	cid, err = r.CreateContainer(ctx, sid, ctrConfig("c", "busybox", annotations), podConfig(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	return sid, cid
}

func ctrStatus(t *testing.T, r *Runtime, cid string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := r.ContainerStatus(context.Background(), cid, false)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	r, clk := newTest(t, Options{})
	sid, err := r.RunPodSandbox(ctx, podConfig("web"), "")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := r.PodSandboxStatus(ctx, sid, false)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || ps.Status.Network.Ip != "10.0.0.1" || ps.Status.Metadata.Name != "web" {
		t.Errorf("sandbox status = %v", ps.Status)
	}
	if _, err := r.CreateContainer(ctx, sid, ctrConfig("c", "busybox", nil), podConfig("web")); code(err) != codes.NotFound {
		t.Errorf("CreateContainer with an image not pulled: %v, want NotFound", err)
	}
	id, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "busybox"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := r.CreateContainer(ctx, sid, ctrConfig("c", "docker.io/library/busybox:latest", nil), podConfig("web"))
	if err != nil {
		t.Fatal(err)
	}
	if st := ctrStatus(t, r, cid); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.ImageRef != id || st.LogPath != "/var/log/pods/web/c/0.log" {
		t.Errorf("created status = %v", st)
	}
	clk.advance(time.Second)
	if err := r.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	st := ctrStatus(t, r, cid)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt <= st.CreatedAt {
		t.Errorf("running status = %v", st)
	}
	if err := r.StartContainer(ctx, cid); code(err) != codes.FailedPrecondition {
		t.Errorf("double start: %v, want FailedPrecondition", err)
	}
	if _, _, err := r.ExecSync(ctx, cid, []string{"true"}, time.Second); err != nil {
		t.Errorf("ExecSync in a running container: %v", err)
	}
	clk.advance(time.Second)
	if err := r.StopContainer(ctx, cid, 30); err != nil {
		t.Fatal(err)
	}
	st = ctrStatus(t, r, cid)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.Reason != "Completed" || st.FinishedAt <= st.StartedAt {
		t.Errorf("exited status = %v", st)
	}
	if err := r.StopContainer(ctx, cid, 30); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if _, _, err := r.ExecSync(ctx, cid, []string{"true"}, time.Second); code(err) != codes.FailedPrecondition {
		t.Errorf("ExecSync in an exited container: %v", err)
	}
	if err := r.StopPodSandbox(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if ps, _ := r.PodSandboxStatus(ctx, sid, false); ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("stopped sandbox = %v", ps.Status.State)
	}
	if _, err := r.CreateContainer(ctx, sid, ctrConfig("d", "busybox", nil), podConfig("web")); code(err) != codes.FailedPrecondition {
		t.Errorf("CreateContainer in a stopped sandbox: %v", err)
	}
	if err := r.RemovePodSandbox(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ContainerStatus(ctx, cid, false); code(err) != codes.NotFound {
		t.Errorf("container after its sandbox was removed: %v", err)
	}
	if l, _ := r.ListPodSandbox(ctx, nil); len(l) != 0 {
		t.Errorf("sandboxes left: %v", l)
	}
	// The name is free again.
	if _, err := r.RunPodSandbox(ctx, podConfig("web"), ""); err != nil {
		t.Errorf("rerun after remove: %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	r, _ := newTest(t, Options{})
	sid, cid := runPod(t, r, "p", nil)
	for name, err := range map[string]error{
		"StartContainer unknown":   r.StartContainer(ctx, "nope"),
		"StopContainer unknown":    r.StopContainer(ctx, "nope", 0),
		"StopPodSandbox unknown":   r.StopPodSandbox(ctx, "nope"),
		"UpdateResources unknown":  r.UpdateContainerResources(ctx, "nope", nil),
		"ReopenContainerLog":       r.ReopenContainerLog(ctx, "nope"),
		"ContainerStatus unknown":  second(r.ContainerStatus(ctx, "nope", false)),
		"PodSandboxStatus unknown": second(r.PodSandboxStatus(ctx, "nope", false)),
		"ContainerStats unknown":   second(r.ContainerStats(ctx, "nope")),
		"PodSandboxStats unknown":  second(r.PodSandboxStats(ctx, "nope")),
		"CreateContainer unknown":  second(r.CreateContainer(ctx, "nope", ctrConfig("x", "busybox", nil), nil)),
	} {
		if code(err) != codes.NotFound {
			t.Errorf("%s: %v, want NotFound", name, err)
		}
	}
	for name, err := range map[string]error{
		"duplicate sandbox":   second(r.RunPodSandbox(ctx, podConfig("p"), "")),
		"duplicate container": second(r.CreateContainer(ctx, sid, ctrConfig("c", "busybox", nil), nil)),
	} {
		if code(err) != codes.AlreadyExists {
			t.Errorf("%s: %v, want AlreadyExists", name, err)
		}
	}
	for name, err := range map[string]error{
		"sandbox without metadata": second(r.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{}, "")),
		"unknown handler":          second(r.RunPodSandbox(ctx, podConfig("q"), "kata")),
		"container without name":   second(r.CreateContainer(ctx, sid, &runtimeapi.ContainerConfig{}, nil)),
		"bad exit-code annotation": second(r.CreateContainer(ctx, sid, ctrConfig("y", "busybox", map[string]string{AnnotationExitCode: "x"}), nil)),
		"bad run-for annotation":   second(r.CreateContainer(ctx, sid, ctrConfig("y", "busybox", map[string]string{AnnotationRunFor: "-1s"}), nil)),
		"bad image reference":      second(r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "UPPERCASE"}, nil, nil)),
		"exec without command":     execErr(r.ExecSync(ctx, cid, nil, 0)),
	} {
		if code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	for name, err := range map[string]error{
		"Exec":        second(r.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: cid})),
		"Attach":      second(r.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: cid})),
		"PortForward": second(r.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sid})),
		"Checkpoint":  r.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: cid}),
		"Events":      r.GetContainerEvents(ctx, nil, nil),
	} {
		if code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want Unimplemented", name, err)
		}
	}
	// Removes are idempotent.
	if err := r.RemoveContainer(ctx, "nope"); err != nil {
		t.Errorf("RemoveContainer unknown: %v", err)
	}
	if err := r.RemovePodSandbox(ctx, "nope"); err != nil {
		t.Errorf("RemovePodSandbox unknown: %v", err)
	}
	if err := r.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: "never-pulled"}); err != nil {
		t.Errorf("RemoveImage unknown: %v", err)
	}
	// Removing a running container removes it.
	if err := r.RemoveContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if l, _ := r.ListContainers(ctx, nil); len(l) != 0 {
		t.Errorf("containers after remove: %v", l)
	}
}

func second[T any](_ T, err error) error { return err }

func execErr(_, _ []byte, err error) error { return err }

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	r, clk := newTest(t, Options{ExitCode: 137})
	_, plain := runPod(t, r, "plain", nil)
	_, annotated := runPod(t, r, "annotated", map[string]string{AnnotationExitCode: "3"})
	_, job := runPod(t, r, "job", map[string]string{AnnotationRunFor: "10s", AnnotationExitCode: "0"})
	if st := ctrStatus(t, r, job); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("job before its time: %v", st.State)
	}
	clk.advance(11 * time.Second)
	st := ctrStatus(t, r, job)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.Reason != "Completed" || st.FinishedAt-st.StartedAt != (10*time.Second).Nanoseconds() {
		t.Errorf("job after its time: %v", st)
	}
	for cid, want := range map[string]int32{plain: 137, annotated: 3} {
		if err := r.StopContainer(ctx, cid, 0); err != nil {
			t.Fatal(err)
		}
		if st := ctrStatus(t, r, cid); st.ExitCode != want || st.Reason != "Error" {
			t.Errorf("exit code %d reason %q, want %d Error", st.ExitCode, st.Reason, want)
		}
	}
	// Stopping a sandbox stops its containers.
	sid, cid := runPod(t, r, "sb", nil)
	if err := r.StopPodSandbox(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if st := ctrStatus(t, r, cid); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container of a stopped sandbox: %v", st.State)
	}
}

func TestFiltersAndStats(t *testing.T) {
	ctx := context.Background()
	r, _ := newTest(t, Options{})
	sa, ca := runPod(t, r, "a", nil)
	sb, cb := runPod(t, r, "b", nil)
	if err := r.StopContainer(ctx, cb, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	for name, tc := range map[string]struct {
		f    *runtimeapi.PodSandboxFilter
		want []string
	}{
		"all":    {nil, []string{sa, sb}},
		"id":     {&runtimeapi.PodSandboxFilter{Id: sb}, []string{sb}},
		"ready":  {&runtimeapi.PodSandboxFilter{State: ready}, []string{sa}},
		"labels": {&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "b"}}, []string{sb}},
		"none":   {&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "c"}}, nil},
	} {
		l, _ := r.ListPodSandbox(ctx, tc.f)
		var got []string
		for _, s := range l {
			got = append(got, s.Id)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ListPodSandbox %s = %v, want %v", name, got, tc.want)
		}
	}
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	for name, tc := range map[string]struct {
		f    *runtimeapi.ContainerFilter
		want []string
	}{
		"all":     {nil, []string{ca, cb}},
		"sandbox": {&runtimeapi.ContainerFilter{PodSandboxId: sb}, []string{cb}},
		"running": {&runtimeapi.ContainerFilter{State: running}, []string{ca}},
		"labels":  {&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"ctr": "c"}}, []string{ca, cb}},
	} {
		l, _ := r.ListContainers(ctx, tc.f)
		var got []string
		for _, c := range l {
			got = append(got, c.Id)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ListContainers %s = %v, want %v", name, got, tc.want)
		}
	}
	cs, err := r.ListContainerStats(ctx, nil)
	if err != nil || len(cs) != 1 || cs[0].Attributes.Id != ca || cs[0].Memory.WorkingSetBytes == nil {
		t.Errorf("ListContainerStats = %v, %v", cs, err)
	}
	ss, err := r.ListPodSandboxStats(ctx, nil)
	if err != nil || len(ss) != 1 || ss[0].Attributes.Id != sa || len(ss[0].Linux.Containers) != 1 {
		t.Errorf("ListPodSandboxStats = %v, %v", ss, err)
	}
	fs, err := r.ImageFsInfo(ctx)
	if err != nil || fs.ImageFilesystems[0].UsedBytes.Value != DefaultImageSize {
		t.Errorf("ImageFsInfo = %v, %v", fs, err)
	}
	st, err := r.Status(ctx, false)
	if err != nil || len(st.Status.Conditions) != 2 || !st.Status.Conditions[0].Status || !st.Status.Conditions[1].Status {
		t.Errorf("Status = %v, %v", st, err)
	}
	v, err := r.Version(ctx, "v1")
	if err != nil || v.RuntimeName != RuntimeName || v.RuntimeApiVersion != "v1" {
		t.Errorf("Version = %v, %v", v, err)
	}
}

func TestImages(t *testing.T) {
	ctx := context.Background()
	r, _ := newTest(t, Options{ImageSize: 42})
	if st, err := r.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: "busybox"}, false); err != nil || st.Image != nil {
		t.Errorf("ImageStatus before pull = %v, %v", st, err)
	}
	id, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "busybox:1.36"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.36"}, nil, nil)
	other := New(Options{})
	elsewhere, _ := other.PullImage(ctx, &runtimeapi.ImageSpec{Image: "busybox:1.36"}, nil, nil)
	if again != id || elsewhere != id {
		t.Errorf("image IDs %s, %s, %s: want one per name", id, again, elsewhere)
	}
	for _, ref := range []string{"busybox:1.36", "docker.io/library/busybox:1.36", id} {
		st, err := r.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false)
		if err != nil || st.Image == nil || st.Image.Id != id || st.Image.Size != 42 || st.Image.RepoTags[0] != "docker.io/library/busybox:1.36" {
			t.Errorf("ImageStatus(%q) = %v, %v", ref, st, err)
		}
	}
	if l, _ := r.ListImages(ctx, nil); len(l) != 1 {
		t.Errorf("ListImages = %v", l)
	}
	if err := r.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: "busybox:1.36"}); err != nil {
		t.Fatal(err)
	}
	if l, _ := r.ListImages(ctx, nil); len(l) != 0 {
		t.Errorf("ListImages after remove = %v", l)
	}
}

func TestThousandsOfPodsConcurrently(t *testing.T) {
	ctx := context.Background()
	r := New(Options{PodCIDR: netip.MustParsePrefix("10.64.0.0/16")})
	if _, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "pause"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 16, 250
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	ips := sync.Map{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				name := fmt.Sprintf("pod-%d-%d", w, i)
				sid, err := r.RunPodSandbox(ctx, podConfig(name), "")
				if err != nil {
					errs <- err
					return
				}
				st, _ := r.PodSandboxStatus(ctx, sid, false)
				if _, dup := ips.LoadOrStore(st.Status.Network.Ip, sid); dup {
					errs <- fmt.Errorf("IP %s handed out twice", st.Status.Network.Ip)
					return
				}
				cid, err := r.CreateContainer(ctx, sid, ctrConfig("c", "pause", nil), nil)
				if err == nil {
					err = r.StartContainer(ctx, cid)
				}
				if err == nil && i%2 == 0 {
					err = r.StopPodSandbox(ctx, sid)
					if err == nil {
						err = r.RemovePodSandbox(ctx, sid)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	pods, _ := r.ListPodSandbox(ctx, nil)
	ctrs, _ := r.ListContainers(ctx, &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})
	if want := workers * perWorker / 2; len(pods) != want || len(ctrs) != want {
		t.Errorf("%d sandboxes and %d running containers, want %d each", len(pods), len(ctrs), want)
	}
}

func TestPlugin(t *testing.T) {
	p := Plugin()
	if p.Name != Name || p.Description == "" || p.New == nil {
		t.Fatalf("Plugin() = %+v", p)
	}
	reg := spec.NewRegistry()
	if err := reg.RegisterRuntime(p); err != nil {
		t.Fatal(err)
	}
	rt, closer, err := p.New(context.Background(), spec.RuntimeConfig{Options: map[string]string{OptionExitCode: "2", OptionPodCIDR: "10.9.0.0/24", OptionImageSize: "7"}})
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	sid, err := rt.RunPodSandbox(context.Background(), podConfig("x"), "")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := rt.PodSandboxStatus(context.Background(), sid, false); st.Status.Network.Ip != "10.9.0.1" {
		t.Errorf("IP = %s, want 10.9.0.1", st.Status.Network.Ip)
	}
	for _, opts := range []map[string]string{
		{"nope": "1"}, {OptionExitCode: "256"}, {OptionPodCIDR: "10.0.0.0/32"}, {OptionPodCIDR: "x"}, {OptionImageSize: "0"},
	} {
		if _, _, err := p.New(context.Background(), spec.RuntimeConfig{Options: opts}); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("options %v: %v, want ErrInvalid", opts, err)
		}
	}
	if _, _, err := p.New(context.Background(), spec.RuntimeConfig{Endpoint: "unix:///x"}); !errors.Is(err, spec.ErrUnsupported) {
		t.Errorf("endpoint: %v, want ErrUnsupported", err)
	}
}

func TestPodCIDRExhaustion(t *testing.T) {
	r := New(Options{PodCIDR: netip.MustParsePrefix("10.1.0.0/30")})
	ctx := context.Background()
	var err error
	for i := range 5 {
		if _, err = r.RunPodSandbox(ctx, podConfig(fmt.Sprint("p", i)), ""); err != nil {
			break
		}
	}
	if code(err) != codes.ResourceExhausted {
		t.Errorf("after the CIDR ran out: %v, want ResourceExhausted", err)
	}
}

func TestListByIDPrefix(t *testing.T) {
	ctx := context.Background()
	r, _ := newTest(t, Options{})
	sid, cid := runPod(t, r, "p", nil)
	if l, _ := r.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{Id: sid[:12]}); len(l) != 1 || l[0].Id != sid {
		t.Errorf("ListPodSandbox by short ID = %v", l)
	}
	if l, _ := r.ListContainers(ctx, &runtimeapi.ContainerFilter{Id: cid[:12]}); len(l) != 1 || l[0].Id != cid {
		t.Errorf("ListContainers by short ID = %v", l)
	}
}

// BenchmarkPodLifecycle measures one pod's full lifecycle: run, create,
// start, status, stop, remove.
func BenchmarkPodLifecycle(b *testing.B) {
	ctx := context.Background()
	r := New(Options{PodCIDR: netip.MustParsePrefix("10.0.0.0/8")})
	if _, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "pause"}, nil, nil); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprint("pod-", i)
		sid, err := r.RunPodSandbox(ctx, podConfig(name), "")
		if err != nil {
			b.Fatal(err)
		}
		cid, err := r.CreateContainer(ctx, sid, ctrConfig("c", "pause", nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.StartContainer(ctx, cid); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ContainerStatus(ctx, cid, false); err != nil {
			b.Fatal(err)
		}
		if err := r.StopPodSandbox(ctx, sid); err != nil {
			b.Fatal(err)
		}
		if err := r.RemovePodSandbox(ctx, sid); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRecordsAreCopies(t *testing.T) {
	ctx := context.Background()
	r, _ := newTest(t, Options{})
	if _, err := r.PullImage(ctx, &runtimeapi.ImageSpec{Image: "busybox"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	pc := podConfig("orig")
	sid, err := r.RunPodSandbox(ctx, pc, "")
	if err != nil {
		t.Fatal(err)
	}
	cc := ctrConfig("c", "busybox", nil)
	cc.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp"}}
	cid, err := r.CreateContainer(ctx, sid, cc, pc)
	if err != nil {
		t.Fatal(err)
	}
	pc.Metadata.Name = "changed"
	cc.Metadata.Name = "changed"
	st, _ := r.PodSandboxStatus(ctx, sid, false)
	st.Status.Metadata.Namespace = "changed too"
	cs := ctrStatus(t, r, cid)
	cs.Metadata.Attempt = 9
	cs.Mounts[0].HostPath = "/elsewhere"
	st, _ = r.PodSandboxStatus(ctx, sid, false)
	if st.Status.Metadata.Name != "orig" || st.Status.Metadata.Namespace != "default" {
		t.Errorf("sandbox metadata = %v", st.Status.Metadata)
	}
	cs = ctrStatus(t, r, cid)
	if cs.Metadata.Name != "c" || cs.Metadata.Attempt != 0 || cs.Mounts[0].HostPath != "/tmp" {
		t.Errorf("container status = %v", cs)
	}
}
