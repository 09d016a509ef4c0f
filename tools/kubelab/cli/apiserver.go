package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/spec"
)

// APIServerOptions are the settings of `kubelab apiserver`.
type APIServerOptions struct {
	// Store is the registered store plugin's name.
	Store string
	// StoreEndpoints, when set, make the store plugin connect to an
	// external server (e.g. etcd client URLs).
	StoreEndpoints []string
	// StoreOptions are plugin-specific key=value settings.
	StoreOptions map[string]string
	// DataDir holds the store's data (DataDir/store); "" means a temporary
	// directory removed at exit.
	DataDir string
	// Listen is the host:port to serve plain HTTP on.
	Listen string
	// Kubeconfig, when set, is where a kubeconfig for the server is
	// written.
	Kubeconfig string
	// ServiceClusterIPRange is the CIDR of Service ClusterIPs.
	ServiceClusterIPRange string
}

// RunAPIServer opens the store, starts the API server on opts.Listen and
// serves until ctx is done. ready, when non-nil, is called with the base URL
// once the server accepts requests.
func RunAPIServer(ctx context.Context, reg *spec.Registry, opts APIServerOptions, out io.Writer, ready func(url string)) error {
	p, err := reg.Store(opts.Store)
	if err != nil {
		return err
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "kubelab-apiserver-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		dataDir = dir
	}
	storeDir := filepath.Join(dataDir, "store")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := p.New(ctx, spec.StoreConfig{DataDir: storeDir, Endpoints: opts.StoreEndpoints, Options: opts.StoreOptions, Logger: logger})
	if err != nil {
		return fmt.Errorf("opening store %q: %w", opts.Store, err)
	}
	defer func() { _ = st.Close() }()
	srv, err := apiserver.New(apiserver.Config{Store: st, ServiceClusterIPRange: opts.ServiceClusterIPRange, Logger: logger})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err
	}
	url := "http://" + lis.Addr().String()
	if opts.Kubeconfig != "" {
		if err := WriteKubeconfig(opts.Kubeconfig, url); err != nil {
			_ = lis.Close()
			return err
		}
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lis) }()
	fprintf(out, "kubelab apiserver serving %s (store %q, data %s)\n", url, opts.Store, dataDir)
	if opts.Kubeconfig != "" {
		fprintf(out, "kubeconfig written to %s: kubectl --kubeconfig %s get ns\n", opts.Kubeconfig, opts.Kubeconfig)
	}
	if ready != nil {
		ready(url)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Close() // ends the watches, so Shutdown need not wait for them
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// WriteKubeconfig writes a kubeconfig with one cluster, user and context
// named "kubelab", pointing at server.
func WriteKubeconfig(path, server string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubelab"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["kubelab"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["kubelab"] = &clientcmdapi.Context{Cluster: "kubelab", AuthInfo: "kubelab", Namespace: "default"}
	cfg.CurrentContext = "kubelab"
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// newAPIServerCommand is `kubelab apiserver`.
func newAPIServerCommand(reg *spec.Registry) *cobra.Command {
	opts := APIServerOptions{}
	var endpoints string
	var storeOpts []string
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the Kubernetes API over a store plugin (kubectl and client-go work against it)",
		Long: `apiserver serves the Kubernetes REST API — the real k8s.io/api types, watch,
discovery, server-side tables — over a registered store plugin, until
interrupted. Plain HTTP for now, without authentication:

  kubelab apiserver --store etcd --data-dir /var/lib/kubelab --kubeconfig ~/.kube/kubelab
  kubectl --kubeconfig ~/.kube/kubelab get ns

kubectl apply needs --validate=false until the server publishes OpenAPI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if endpoints != "" {
				opts.StoreEndpoints = strings.Split(endpoints, ",")
			}
			opts.StoreOptions = map[string]string{}
			for _, o := range storeOpts {
				k, v, ok := strings.Cut(o, "=")
				if !ok {
					return fmt.Errorf("--store-option %q: want key=value", o)
				}
				opts.StoreOptions[k] = v
			}
			return RunAPIServer(cmd.Context(), reg, opts, cmd.OutOrStdout(), nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Store, "store", "memory", "store plugin (see `kubelab plugins`)")
	f.StringVar(&endpoints, "store-endpoints", "", "comma-separated endpoints of an external store server (e.g. etcd client URLs)")
	f.StringArrayVar(&storeOpts, "store-option", nil, "store plugin option key=value (repeatable)")
	f.StringVar(&opts.DataDir, "data-dir", "", "directory for the store's data (default: a temporary directory removed at exit)")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:6443", "host:port to serve HTTP on")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "write a kubeconfig for the server to this file")
	f.StringVar(&opts.ServiceClusterIPRange, "service-cluster-ip-range", apiserver.DefaultServiceClusterIPRange, "CIDR Service ClusterIPs are allocated from")
	return cmd
}
