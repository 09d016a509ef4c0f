package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/authn"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
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
	// Listen is the host:port to serve HTTPS (or, with InsecureHTTP,
	// plain HTTP) on.
	Listen string
	// Kubeconfig, when set, is where a kubeconfig for the server is
	// written: the cluster-admin one (client certificate in
	// system:masters, CA embedded), or one without credentials with
	// InsecureHTTP.
	Kubeconfig string
	// InsecureHTTP serves plain HTTP without authentication,
	// authorization or the security admission plugins (every request is
	// allowed), as before security was wired; for tests and debugging.
	InsecureHTTP bool
	// TokenAuthFile is a static token file (kube-apiserver's
	// --token-auth-file CSV: token,user,uid[,"group1,group2"]).
	TokenAuthFile string
	// KubeletCAFile, when set, is the CA bundle kubelets' serving
	// certificates must chain to (kube-apiserver's
	// --kubelet-certificate-authority); unset, they are not verified.
	KubeletCAFile string
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
	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err
	}
	defer func() { _ = lis.Close() }()
	cfg := apiserver.Config{Store: st, ServiceClusterIPRange: opts.ServiceClusterIPRange, Logger: logger}
	var srv *apiserver.Server
	var tlsConfig *tls.Config
	var adminKubeconfig string
	url := "http://" + lis.Addr().String()
	if opts.InsecureHTTP {
		if srv, err = apiserver.New(cfg); err != nil {
			return err
		}
	} else {
		url = "https://" + lis.Addr().String()
		srv, tlsConfig, adminKubeconfig, err = newSecureAPIServer(cfg, dataDir, url, opts)
		if err != nil {
			return err
		}
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	if opts.Kubeconfig != "" {
		if adminKubeconfig != "" {
			err = copyKubeconfig(adminKubeconfig, opts.Kubeconfig)
		} else {
			err = WriteKubeconfig(opts.Kubeconfig, url)
		}
		if err != nil {
			return err
		}
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, TLSConfig: tlsConfig}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(lis, "", "")
		} else {
			errc <- hs.Serve(lis)
		}
	}()
	fprintf(out, "kubelab apiserver serving %s (store %q, data %s)\n", url, opts.Store, dataDir)
	if adminKubeconfig != "" {
		fprintf(out, "CA and component kubeconfigs in %s (cluster-admin: %s)\n", dataDir, adminKubeconfig)
	}
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

// newSecureAPIServer prepares the data dir's PKI (pki.Ensure: the CA on
// first start, reused after) and builds the server with authentication,
// RBAC and admission. It returns the TLS config to serve with and the path
// of the cluster-admin kubeconfig.
func newSecureAPIServer(cfg apiserver.Config, dataDir, url string, opts APIServerOptions) (*apiserver.Server, *tls.Config, string, error) {
	var ips []net.IP
	if _, ipnet, err := net.ParseCIDR(cfg.ServiceClusterIPRange); err == nil {
		ip := ipnet.IP.To4()
		if ip != nil {
			first := make(net.IP, 4)
			copy(first, ip)
			first[3]++
			ips = append(ips, first) // the kubernetes Service's IP
		}
	}
	if host, _, err := net.SplitHostPort(opts.Listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	}
	var names []string
	if h, err := os.Hostname(); err == nil && len(validation.IsDNS1123Subdomain(h)) == 0 {
		names = append(names, h)
	}
	d, err := pki.Ensure(dataDir, pki.EnsureOptions{Server: url, DNSNames: names, IPs: ips})
	if err != nil {
		return nil, nil, "", fmt.Errorf("preparing the data dir's certificates: %w", err)
	}
	tlsConfig, err := pki.ServerTLSConfig(d.Serving, d.CA)
	if err != nil {
		return nil, nil, "", err
	}
	kc, err := d.KubeletClient.TLSCertificate()
	if err != nil {
		return nil, nil, "", err
	}
	// The kubelets' serving certificates are not verified (self-signed by
	// default), as kube-apiserver without --kubelet-certificate-authority.
	cfg.KubeletTLS = &tls.Config{Certificates: []tls.Certificate{kc}, MinVersion: tls.VersionTLS12}
	if opts.KubeletCAFile != "" {
		pem, err := os.ReadFile(opts.KubeletCAFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("--kubelet-certificate-authority: %w", err)
		}
		cfg.KubeletTLS.RootCAs = x509.NewCertPool()
		if !cfg.KubeletTLS.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, "", fmt.Errorf("--kubelet-certificate-authority %s: no PEM certificates: %w", opts.KubeletCAFile, spec.ErrInvalid)
		}
	}
	sec := apiserver.Security{CA: d.CA, SigningKey: d.SigningKey}
	if opts.TokenAuthFile != "" {
		if sec.Tokens, err = authn.NewTokenFile(opts.TokenAuthFile); err != nil {
			return nil, nil, "", fmt.Errorf("--token-auth-file: %w", err)
		}
	}
	srv, err := apiserver.NewSecure(cfg, sec)
	if err != nil {
		return nil, nil, "", err
	}
	return srv, tlsConfig, d.Path(pki.AdminKubeconfigFile), nil
}

// copyKubeconfig copies the kubeconfig at from to to (mode 0600).
func copyKubeconfig(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(to, data, 0o600)
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
interrupted. It serves HTTPS with a CA generated on first start and kept in
the data dir (with kubeconfigs for the scheduler, controller manager and
proxy), authenticates client certificates, --token-auth-file tokens and
service-account tokens, authorizes with RBAC (bootstrap roles created on
first start) and runs the admission chain. --kubeconfig gets the
cluster-admin kubeconfig:

  kubelab apiserver --store etcd --data-dir /var/lib/kubelab --kubeconfig ~/.kube/kubelab
  kubectl --kubeconfig ~/.kube/kubelab get ns

--insecure-http serves plain HTTP with every request allowed (tests).`,
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
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:6443", "host:port to serve HTTPS on (HTTP with --insecure-http)")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "write the cluster-admin kubeconfig for the server to this file")
	f.BoolVar(&opts.InsecureHTTP, "insecure-http", false, "serve plain HTTP without authentication or authorization (every request allowed; for tests)")
	f.StringVar(&opts.KubeletCAFile, "kubelet-certificate-authority", "", "CA bundle that verifies kubelets' serving certificates (unset: not verified, as kube-apiserver)")
	f.StringVar(&opts.TokenAuthFile, "token-auth-file", "", "static bearer tokens, CSV lines token,user,uid[,\"group1,group2\"]")
	f.StringVar(&opts.ServiceClusterIPRange, "service-cluster-ip-range", apiserver.DefaultServiceClusterIPRange, "CIDR Service ClusterIPs are allocated from")
	return cmd
}
