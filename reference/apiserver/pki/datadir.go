package pki

import (
	"crypto/ecdsa"
	"errors"
	"net"
	"path/filepath"
	"slices"
)

// File names that Ensure writes into a data directory, besides CACertFile,
// CAKeyFile and ServiceAccountKeyFile.
const (
	// ServingCertFile is the API server's serving certificate (0644).
	ServingCertFile = "apiserver.crt"
	// ServingKeyFile is its key (0600).
	ServingKeyFile = "apiserver.key"
	// AdminKubeconfigFile is the cluster-admin kubeconfig for the user
	// (kubernetes-admin in system:masters).
	AdminKubeconfigFile = "admin.kubeconfig"
	// SchedulerKubeconfigFile is for system:kube-scheduler.
	SchedulerKubeconfigFile = "scheduler.kubeconfig"
	// ControllerManagerKubeconfigFile is for system:kube-controller-manager.
	ControllerManagerKubeconfigFile = "controller-manager.kubeconfig"
	// ProxyKubeconfigFile is for system:kube-proxy.
	ProxyKubeconfigFile = "proxy.kubeconfig"
	// KubeletClientCertFile and KubeletClientKeyFile are the client
	// certificate the API server presents to kubelets (KubeletClientIdentity),
	// as kubeadm's apiserver-kubelet-client.crt/.key.
	KubeletClientCertFile = "apiserver-kubelet-client.crt"
	KubeletClientKeyFile  = "apiserver-kubelet-client.key"
)

// DefaultServingNames are the DNS names every API server certificate
// carries: what clients inside and outside a cluster use.
var DefaultServingNames = []string{
	"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
}

// EnsureOptions say what Ensure prepares.
type EnsureOptions struct {
	// Server is the URL written into the kubeconfigs, e.g.
	// "https://127.0.0.1:6443". Required.
	Server string
	// DNSNames and IPs are added to DefaultServingNames and 127.0.0.1 in
	// the serving certificate: the host's and nodes' addresses, and the
	// kubernetes Service's cluster IP.
	DNSNames []string
	IPs      []net.IP
}

// DataDir is what Ensure found or made. Paths are absolute when dir was.
type DataDir struct {
	CA         *CA
	Serving    *KeyPair
	SigningKey *ecdsa.PrivateKey
	// KubeletClient is the API server's client certificate for kubelets
	// (KubeletClientIdentity), issued afresh by every Ensure.
	KubeletClient *KeyPair
	// Dir is the data directory; the files are named by the constants of
	// this package.
	Dir string
	// CACreated is true when this call generated the CA (first start).
	CACreated bool
}

// Path returns the path of a file (one of this package's file names) in
// the data directory.
func (d *DataDir) Path(name string) string { return filepath.Join(d.Dir, name) }

// Ensure prepares the API server's data directory on every start: the CA
// (created on first start, reused after), the serving certificate (reused
// while it is valid and covers the names, see LoadOrIssueServing), the
// service-account signing key, and fresh kubeconfigs (mode 0600) for the
// user (cluster-admin, AdminKubeconfigFile) and for the scheduler,
// controller manager and proxy identities, and a fresh kubelet client
// certificate (KubeletClientCertFile). Kubeconfigs for nodes are
// written on demand with CA.WriteClientKubeconfig and NodeIdentity.
// Rewritten kubeconfigs carry new certificates; earlier ones stay valid.
func Ensure(dir string, opts EnsureOptions) (*DataDir, error) {
	if opts.Server == "" {
		return nil, errors.New("pki.Ensure: no server URL for the kubeconfigs")
	}
	ca, created, err := LoadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	dnsNames := append(slices.Clone(DefaultServingNames), opts.DNSNames...)
	ips := append([]net.IP{net.ParseIP("127.0.0.1")}, opts.IPs...)
	d := &DataDir{CA: ca, Dir: dir, CACreated: created}
	if d.Serving, _, err = ca.LoadOrIssueServing(d.Path(ServingCertFile), d.Path(ServingKeyFile), dnsNames, ips); err != nil {
		return nil, err
	}
	if d.SigningKey, _, err = LoadOrCreateSigningKey(d.Path(ServiceAccountKeyFile)); err != nil {
		return nil, err
	}
	if d.KubeletClient, err = ca.IssueClient(KubeletClientIdentity()); err != nil {
		return nil, err
	}
	if err := WriteKeyPair(d.KubeletClient, d.Path(KubeletClientCertFile), d.Path(KubeletClientKeyFile)); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		file string
		id   Identity
	}{
		{AdminKubeconfigFile, AdminIdentity()},
		{SchedulerKubeconfigFile, SchedulerIdentity()},
		{ControllerManagerKubeconfigFile, ControllerManagerIdentity()},
		{ProxyKubeconfigFile, ProxyIdentity()},
	} {
		if err := ca.WriteClientKubeconfig(d.Path(k.file), opts.Server, k.id); err != nil {
			return nil, err
		}
	}
	return d, nil
}
