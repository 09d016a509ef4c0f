package pki

import (
	"errors"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultClusterName names the cluster in kubeconfigs written by this package.
const DefaultClusterName = "kubelab"

// Kubeconfig returns a kubeconfig with one cluster (clusterName at server,
// trusting caPEM), one user named after client's CommonName authenticating
// with client's embedded certificate and key, and one context
// "<user>@<clusterName>" that is current. Nothing is copied by reference:
// the returned config owns its byte slices.
func Kubeconfig(server, clusterName string, caPEM []byte, client *KeyPair) *clientcmdapi.Config {
	userName := client.Cert.Subject.CommonName
	ctxName := userName + "@" + clusterName
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = append([]byte(nil), caPEM...)
	cfg.Clusters[clusterName] = cluster
	auth := clientcmdapi.NewAuthInfo()
	auth.ClientCertificateData = append([]byte(nil), client.CertPEM...)
	auth.ClientKeyData = append([]byte(nil), client.KeyPEM...)
	cfg.AuthInfos[userName] = auth
	kctx := clientcmdapi.NewContext()
	kctx.Cluster = clusterName
	kctx.AuthInfo = userName
	cfg.Contexts[ctxName] = kctx
	cfg.CurrentContext = ctxName
	return cfg
}

// WriteKubeconfig serializes cfg as clientcmd.WriteToFile does and writes it
// to path with mode 0600, atomically (see WriteFileAtomic).
func WriteKubeconfig(path string, cfg *clientcmdapi.Config) error {
	if cfg == nil {
		return errors.New("nil kubeconfig")
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data, 0o600)
}

// WriteClientKubeconfig issues a fresh client certificate for id and writes
// a kubeconfig for it to path (mode 0600) pointing at server under the name
// DefaultClusterName. For the user's cluster-admin kubeconfig pass
// AdminIdentity() (kubernetes-admin in system:masters, which the bootstrap
// policy binds to the cluster-admin role). Calling it again replaces the
// file with a new certificate; the old one stays valid until it expires.
func (ca *CA) WriteClientKubeconfig(path, server string, id Identity) error {
	kp, err := ca.IssueClient(id)
	if err != nil {
		return err
	}
	return WriteKubeconfig(path, Kubeconfig(server, DefaultClusterName, ca.CertPEM, kp))
}
