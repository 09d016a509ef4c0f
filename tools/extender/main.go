// Command extender serves the sample scheduler extender of package
// fakes/extender: it filters out nodes labelled extender.kubelab.io/exclude and
// prefers nodes by the value (0..10) of extender.kubelab.io/score.
//
//	go run ./tools/extender --listen 127.0.0.1:8888 [--kubeconfig FILE]
//
// and in the scheduler's config:
//
//	extenders:
//	- urlPrefix: http://127.0.0.1:8888
//	  filterVerb: filter
//	  prioritizeVerb: prioritize
//	  weight: 1
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/fakes/extender"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8888", "address to serve the extender on")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig for /bind (without it, bind replies with an error)")
	exclude := flag.String("exclude-label", extender.DefaultExcludeLabel, "nodes with this label are filtered out")
	score := flag.String("score-label", extender.DefaultScoreLabel, "nodes are preferred by this label's value (0..10)")
	flag.Parse()
	cfg := extender.Config{ExcludeLabel: *exclude, ScoreLabel: *score}
	if *kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubelab-extender:", err)
			os.Exit(2)
		}
		if cfg.Client, err = kubernetes.NewForConfig(rc); err != nil {
			fmt.Fprintln(os.Stderr, "kubelab-extender:", err)
			os.Exit(2)
		}
	}
	srv := &http.Server{Addr: *listen, Handler: extender.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, "kubelab-extender: serving on", *listen)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "kubelab-extender:", err)
		os.Exit(1)
	}
}
