package runtime

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
)

// expectNotFound checks that err is a gRPC NotFound status.
func expectNotFound(err error, call, what string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "%s of unknown %s", call, what)
	Expect(status.Code(err)).To(Equal(codes.NotFound), "%s of unknown %s: %v", call, what, err)
}

func describeErrors(s *shared) {
	Describe("Errors", func() {
		f := newFixture(s)

		It("are NotFound for unknown sandbox and container IDs", harness.Labels(CapErrors), func(ctx SpecContext) {
			sbID, cID := missingID(), missingID()
			_, err := f.rt.PodSandboxStatus(ctx, sbID, false)
			expectNotFound(err, "PodSandboxStatus", sbID)
			_, err = f.rt.ContainerStatus(ctx, cID, false)
			expectNotFound(err, "ContainerStatus", cID)
			expectNotFound(f.rt.StartContainer(ctx, cID), "StartContainer", cID)
			_, _, err = f.rt.ExecSync(ctx, cID, []string{"true"}, 10*time.Second)
			expectNotFound(err, "ExecSync", cID)
			cfg := f.sandboxConfig("missing")
			_, err = f.rt.CreateContainer(ctx, sbID, sleeper("orphan"), cfg)
			expectNotFound(err, "CreateContainer in a sandbox", sbID)
		}, SpecTimeout(specTimeout))

		It("are not returned when removing unknown IDs (removal is idempotent)", harness.Labels(CapErrors), func(ctx SpecContext) {
			Expect(f.rt.RemoveContainer(ctx, missingID())).To(Succeed())
			Expect(f.rt.RemovePodSandbox(ctx, missingID())).To(Succeed())
			for call, err := range map[string]error{
				"StopContainer":  f.rt.StopContainer(ctx, missingID(), 1),
				"StopPodSandbox": f.rt.StopPodSandbox(ctx, missingID()),
			} {
				if err != nil {
					Expect(status.Code(err)).To(Equal(codes.NotFound), "%s of an unknown ID succeeds or is NotFound: %v", call, err)
				}
			}
		}, SpecTimeout(specTimeout))

		It("reject starting a container twice", harness.Labels(CapErrors), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "twice")
			id := f.running(ctx, sb, sbCfg, sleeper("main"))
			Expect(f.rt.StartContainer(ctx, id)).NotTo(Succeed(), "starting a running container")
			Expect(f.status(ctx, id).GetState()).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
		}, SpecTimeout(specTimeout))

		It("are not returned when removing a running container: it is killed and removed", harness.Labels(CapErrors), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "force")
			id := f.running(ctx, sb, sbCfg, containerConfig("stubborn", BusyboxImage, []string{"sleep", "3600"}, nil))
			Expect(f.rt.RemoveContainer(ctx, id)).To(Succeed())
			_, err := f.rt.ContainerStatus(ctx, id, false)
			Expect(status.Code(err)).To(Equal(codes.NotFound), "ContainerStatus of a removed container: %v", err)
		}, SpecTimeout(specTimeout))

		It("reject a container in a stopped sandbox", harness.Labels(CapErrors), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "stopped")
			Expect(f.rt.StopPodSandbox(ctx, sb)).To(Succeed())
			id, err := f.rt.CreateContainer(ctx, sb, sleeper("late"), sbCfg)
			if err == nil {
				// Creation may succeed; the container must not run.
				err = f.rt.StartContainer(ctx, id)
			}
			Expect(err).To(HaveOccurred(), "a container in a stopped sandbox")
		}, SpecTimeout(specTimeout))

		It("reject a container whose image is not present, naming it", harness.Labels(CapErrors), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "noimage")
			const image = "kubelab.local/no-such-image:1.0"
			_, err := f.rt.CreateContainer(ctx, sb, containerConfig("main", image, []string{"true"}, nil), sbCfg)
			expectNotFound(err, "CreateContainer with an image", image)
			Expect(err.Error()).To(ContainSubstring(image), "the error names the image")
		}, SpecTimeout(specTimeout))

		It("report a container whose process cannot start as exited, with a reason", harness.Labels(CapErrors), func(ctx SpecContext) {
			sb, sbCfg := f.sandbox(ctx, "badcmd")
			const binary = "/kubelab-no-such-binary"
			id := f.create(ctx, sb, sbCfg, containerConfig("main", BusyboxImage, []string{binary}, nil))
			err := f.rt.StartContainer(ctx, id)
			Expect(err).To(HaveOccurred(), "StartContainer of a command that does not exist")
			Expect(err.Error()).To(ContainSubstring(binary), "the error names the command")
			st := f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_EXITED)
			Expect(st.GetReason()).NotTo(BeEmpty(), "the exited container's reason")
			Expect(st.GetMessage()).To(ContainSubstring(binary), "the exited container's message names the command")
		}, SpecTimeout(specTimeout))

		It("reject a sandbox config without metadata and exec in an exited container", harness.Labels(CapErrors), func(ctx SpecContext) {
			_, err := f.rt.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{LogDirectory: GinkgoT().TempDir()}, "")
			Expect(err).To(HaveOccurred(), "RunPodSandbox without metadata")
			sb, sbCfg := f.sandbox(ctx, "exited")
			id := f.run(ctx, sb, sbCfg, containerConfig("done", BusyboxImage, []string{"true"}, nil))
			f.waitState(ctx, id, runtimeapi.ContainerState_CONTAINER_EXITED)
			r, err := f.exec(ctx, id, 10*time.Second, "true")
			Expect(err != nil || r.code != 0).To(BeTrue(), "ExecSync in an exited container fails (got %+v, %v)", r, err)
		}, SpecTimeout(specTimeout))
	})
}
