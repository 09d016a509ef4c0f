package apiserver_test

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/conformance/apiserver"
	"github.com/kubelab/kubelab/plugins/store/memory"
	kapiserver "github.com/kubelab/kubelab/reference/apiserver"
)

// kubeconfigEnv names a kubeconfig to run the suite against instead of
// kubelab's API server over the memory store (e.g. a real kube-apiserver).
const kubeconfigEnv = "KUBELAB_APISERVER_KUBECONFIG"

func TestSuite(t *testing.T) {
	target := apiserver.Target{Name: "memory"}
	if path := os.Getenv(kubeconfigEnv); path != "" {
		target.Name = "kubeconfig"
		target.Config = func(context.Context) (*rest.Config, error) { return clientcmd.BuildConfigFromFlags("", path) }
	} else {
		st := memory.New(memory.Options{})
		defer st.Close()
		srv, err := kapiserver.New(kapiserver.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		hs := httptest.NewServer(srv.Handler())
		defer hs.Close()
		defer hs.CloseClientConnections()
		target.Config = func(context.Context) (*rest.Config, error) { return &rest.Config{Host: hs.URL}, nil }
	}
	apiserver.Register(target)
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "apiserver conformance ("+target.Name+")")
}
