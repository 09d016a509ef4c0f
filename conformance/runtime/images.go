package runtime

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/harness"
)

func describeImages(s *shared) {
	Describe("Images", func() {
		f := newFixture(s)

		It("are listed with IDs, names and sizes", harness.Labels(CapImages), func(ctx SpecContext) {
			imgs, err := f.rt.ListImages(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			byName := map[string]*runtimeapi.Image{}
			for _, img := range imgs {
				for _, tag := range img.RepoTags {
					byName[tag] = img
				}
			}
			for _, name := range []string{BusyboxImage, WorkloadImage} {
				Expect(byName).To(HaveKey(name), "ListImages has the test image %s", name)
				Expect(byName[name].GetId()).NotTo(BeEmpty(), "ID of %s", name)
				Expect(byName[name].GetSize()).To(BeNumerically(">", 0), "size of %s", name)
			}
		}, SpecTimeout(specTimeout))

		It("report their status by name and by ID; an unknown image has none", harness.Labels(CapImages), func(ctx SpecContext) {
			byName, err := f.rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: BusyboxImage}, false)
			Expect(err).NotTo(HaveOccurred())
			img := byName.GetImage()
			Expect(img).NotTo(BeNil(), "ImageStatus of %s", BusyboxImage)
			Expect(img.RepoTags).To(ContainElement(BusyboxImage))
			byID, err := f.rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: img.Id}, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(byID.GetImage().GetId()).To(Equal(img.Id), "ImageStatus by ID")
			Expect(byID.GetImage().GetRepoTags()).To(ContainElement(BusyboxImage))

			unknown, err := f.rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: "kubelab.local/no-such-image:1.0"}, false)
			Expect(err).NotTo(HaveOccurred(), "ImageStatus of an unknown image is no error")
			Expect(unknown.GetImage()).To(BeNil(), "ImageStatus of an unknown image")
			By("removing an unknown image, which succeeds")
			Expect(f.rt.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: "kubelab.local/no-such-image:1.0"})).To(Succeed())
		}, SpecTimeout(specTimeout))

		It("fail to pull from a registry that does not exist", harness.Labels(CapImages), func(ctx SpecContext) {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := f.rt.PullImage(pctx, &runtimeapi.ImageSpec{Image: "kubelab.invalid/no-such-image:1.0"}, nil, nil)
			Expect(err).To(HaveOccurred(), "pulling an image whose registry does not exist")
			Expect(err.Error()).To(ContainSubstring("kubelab.invalid/no-such-image"), "the error names the image")
		}, SpecTimeout(specTimeout))
	})
}
