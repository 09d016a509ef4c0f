package apiserver

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/conformance/harness"
)

// specTimeout bounds every spec.
const specTimeout = 60 * time.Second

// fixture is what every spec gets: clients and a namespace of its own.
type fixture struct {
	config  *rest.Config
	client  kubernetes.Interface
	dynamic dynamic.Interface
	ns      string
}

// newFixture creates, before each spec, clients for t and a fresh
// namespace, deleted after the spec.
func newFixture(t Target) *fixture {
	f := &fixture{}
	BeforeEach(func(ctx SpecContext) {
		cfg, err := t.Config(ctx)
		Expect(err).NotTo(HaveOccurred(), "client config for target %s", t.Name)
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = 200, 400
		f.config = cfg
		f.client, err = kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		f.dynamic, err = dynamic.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		f.ns = "conformance-" + rand.String(8)
		Expect(harness.CreateNamespace(ctx, f.client, f.ns)).To(Succeed(), "creating the spec's namespace")
		ns := f.ns
		DeferCleanup(func(ctx context.Context) {
			if err := harness.DeleteNamespace(ctx, f.client, ns); err != nil {
				Fail(err.Error())
			}
		})
	})
	return f
}

// Register declares every spec of the suite against t. Call it once, before
// Ginkgo's RunSpecs; it declares containers and runs nothing itself.
func Register(t Target) {
	describeCRUD(t)
	describeList(t)
	describeWatch(t)
	describePatch(t)
	describeStatus(t)
	describeValidation(t)
	describeCreateDefaults(t)
	describeListSemantics(t)
	describeWatchSemantics(t)
	describeDelete(t)
	describeBadInput(t)
	describeInformers(t)
	describeDynamic(t)
	describeLeaderElection(t)
}
