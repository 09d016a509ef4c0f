package apiserver

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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
		_, err = f.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the spec's namespace")
		// A bare kube-apiserver (no controller-manager) creates no default
		// ServiceAccount, which its admission requires of pods.
		_, err = f.client.CoreV1().ServiceAccounts(f.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred(), "creating the namespace's default ServiceAccount")
		}
		ns := f.ns
		DeferCleanup(func(ctx context.Context) {
			err := f.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				Fail(fmt.Sprintf("deleting namespace %s: %v", ns, err))
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
