// Package pki holds the API server's certificate authority: a CA generated on
// first start and kept in a data directory, serving certificates for the
// server's DNS names and IPs, client certificates that name a Kubernetes user
// and its groups (CN = user, O = groups, as kube-apiserver reads them), and
// kubeconfig files that embed the CA and a client certificate.
//
// Keys are ECDSA P-256. Private keys are written with mode 0600 and the data
// directory is created with mode 0700; certificates are written with 0644.
// Files are replaced atomically (write to a temporary file, then rename), so
// a crash never leaves a half-written key behind.
//
// Nothing here starts goroutines or keeps state outside the returned values;
// a *CA is safe for concurrent use once loaded.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
)

// File names inside a data directory.
const (
	// CACertFile is the CA certificate (PEM), readable by everyone.
	CACertFile = "ca.crt"
	// CAKeyFile is the CA private key (PEM, PKCS#8), mode 0600.
	CAKeyFile = "ca.key"
)

// Default lifetimes. The CA outlives what it signs, as with kubeadm.
const (
	// CAValidity is how long a generated CA certificate is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long serving and client certificates are valid.
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry LoadOrIssueServing reissues a
	// serving certificate it finds on disk.
	RenewBefore = 30 * 24 * time.Hour
)

// Well-known identities of the reference components, as Kubernetes names
// them. The group constants live in k8s.io/apiserver/pkg/authentication/user.
const (
	// AdminUser is the user of the cluster-admin kubeconfig; it is in
	// user.SystemPrivilegedGroup (system:masters).
	AdminUser = "kubernetes-admin"
	// NodeUserPrefix prefixes a kubelet's user name: system:node:<nodeName>.
	NodeUserPrefix = "system:node:"
)

// ErrCAKeyMissing is returned by LoadOrCreateCA when the data directory holds
// a CA certificate but not its key (or the reverse): regenerating the CA
// would silently invalidate every certificate it issued, so the caller must
// repair the directory.
var ErrCAKeyMissing = errors.New("CA certificate and key must both be present or both absent")

// Identity is a Kubernetes user as a client certificate carries it.
type Identity struct {
	// User becomes the certificate's Subject CommonName.
	User string
	// Groups become the certificate's Subject Organization, in order.
	Groups []string
}

// AdminIdentity is the cluster administrator: kubernetes-admin in system:masters.
func AdminIdentity() Identity {
	return Identity{User: AdminUser, Groups: []string{user.SystemPrivilegedGroup}}
}

// SchedulerIdentity is the scheduler's identity: system:kube-scheduler.
func SchedulerIdentity() Identity { return Identity{User: user.KubeScheduler} }

// ControllerManagerIdentity is the controller manager's identity:
// system:kube-controller-manager.
func ControllerManagerIdentity() Identity { return Identity{User: user.KubeControllerManager} }

// ProxyIdentity is the service proxy's identity: system:kube-proxy.
func ProxyIdentity() Identity { return Identity{User: user.KubeProxy} }

// KubeletClientUser is the user the API server is to kubelets when it
// proxies pods/log, pods/exec, pods/attach, pods/portforward and
// nodes/proxy, as kubeadm names it.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// KubeletClientIdentity is the API server's identity towards kubelets:
// kube-apiserver-kubelet-client in system:masters (kubeadm's historical
// group), so the kubelet's SubjectAccessReview on nodes/proxy allows it.
func KubeletClientIdentity() Identity {
	return Identity{User: KubeletClientUser, Groups: []string{user.SystemPrivilegedGroup}}
}

// NodeIdentity is the kubelet identity of node nodeName:
// system:node:<nodeName> in system:nodes.
func NodeIdentity(nodeName string) Identity {
	return Identity{User: NodeUserPrefix + nodeName, Groups: []string{user.NodesGroup}}
}

// KeyPair is a certificate with its private key, both also kept as PEM.
// The fields are read-only after creation.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// TLSCertificate returns the pair as a tls.Certificate for tls.Config.
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
}

// CA is a certificate authority with its signing key.
type CA struct {
	KeyPair
	// Now returns the current time for certificate validity; nil means
	// time.Now. Set it before issuing, not concurrently with issuing.
	Now func() time.Time
}

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

// Pool returns a new pool holding only the CA certificate, for verifying
// client certificates (tls.Config.ClientCAs) or the server (RootCAs).
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// NewCA generates a fresh self-signed CA named commonName (no files written).
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(CAValidity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	kp, err := pairFromDER(der, key)
	if err != nil {
		return nil, err
	}
	return &CA{KeyPair: *kp}, nil
}

// LoadOrCreateCA returns the CA kept in dir (CACertFile and CAKeyFile),
// generating and writing a new one named "kubelab-ca" when neither file
// exists; created reports which happened. dir is created with mode 0700 if
// missing. Only one of the two files present is ErrCAKeyMissing; a key that
// does not match the certificate, or a certificate that is not a CA, is an
// error too. Callers must not run it concurrently on the same dir.
func LoadOrCreateCA(dir string) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	switch {
	case certOK && keyOK:
		kp, err := LoadKeyPair(certPath, keyPath)
		if err != nil {
			return nil, false, fmt.Errorf("load CA from %q: %w", dir, err)
		}
		if !kp.Cert.IsCA {
			return nil, false, fmt.Errorf("load CA from %q: %s is not a CA certificate", dir, CACertFile)
		}
		return &CA{KeyPair: *kp}, false, nil
	case certOK != keyOK:
		return nil, false, fmt.Errorf("data dir %q: %w", dir, ErrCAKeyMissing)
	}
	ca, err = NewCA("kubelab-ca")
	if err != nil {
		return nil, false, err
	}
	if err := WriteKeyPair(&ca.KeyPair, certPath, keyPath); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// IssueServing signs a serving certificate (server auth) for the given DNS
// names and IPs, with a fresh key. The first DNS name, or else the first IP,
// is the CommonName. At least one name or IP is required.
func (ca *CA) IssueServing(dnsNames []string, ips []net.IP) (*KeyPair, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("serving certificate needs at least one DNS name or IP")
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	} else {
		cn = ips[0].String()
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    slices.Clone(dnsNames),
		IPAddresses: slices.Clone(ips),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// IssueClient signs a client certificate (client auth) for id, with a fresh
// key: CommonName = id.User, Organization = id.Groups. id.User must be set.
func (ca *CA) IssueClient(id Identity) (*KeyPair, error) {
	if id.User == "" {
		return nil, errors.New("client certificate needs a user name")
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: id.User, Organization: slices.Clone(id.Groups)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(tmpl *x509.Certificate) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	now := ca.now()
	tmpl.SerialNumber = mustSerial()
	tmpl.NotBefore = now.Add(-5 * time.Minute).UTC() // tolerate small clock skew
	tmpl.NotAfter = now.Add(LeafValidity).UTC()
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	return pairFromDER(der, key)
}

// LoadOrIssueServing returns the serving certificate kept at certPath and
// keyPath when it was signed by ca, covers every requested DNS name and IP,
// and is valid for at least RenewBefore more; otherwise it issues a new one
// and writes it there (key mode 0600). reissued reports which happened.
func (ca *CA) LoadOrIssueServing(certPath, keyPath string, dnsNames []string, ips []net.IP) (kp *KeyPair, reissued bool, err error) {
	if old, err := LoadKeyPair(certPath, keyPath); err == nil && ca.covers(old.Cert, dnsNames, ips) {
		return old, false, nil
	}
	kp, err = ca.IssueServing(dnsNames, ips)
	if err != nil {
		return nil, false, err
	}
	if err := WriteKeyPair(kp, certPath, keyPath); err != nil {
		return nil, false, err
	}
	return kp, true, nil
}

func (ca *CA) covers(c *x509.Certificate, dnsNames []string, ips []net.IP) bool {
	if _, err := c.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: ca.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return false
	}
	if ca.now().Add(RenewBefore).After(c.NotAfter) {
		return false
	}
	for _, n := range dnsNames {
		if !slices.Contains(c.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// VerifyClient checks that c was signed by ca for client auth and is valid
// now; it returns the identity it carries.
func (ca *CA) VerifyClient(c *x509.Certificate) (Identity, error) {
	if _, err := c.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: ca.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return Identity{}, err
	}
	return Identity{User: c.Subject.CommonName, Groups: slices.Clone(c.Subject.Organization)}, nil
}

// LoadKeyPair reads a PEM certificate and a PEM private key (PKCS#8, SEC 1
// EC or PKCS#1 RSA) and checks that they belong together.
func LoadKeyPair(certPath, keyPath string) (*KeyPair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%q and %q: %w", certPath, keyPath, err)
	}
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", certPath, err)
	}
	key, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %q of type %T cannot sign", keyPath, tc.PrivateKey)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// WriteKeyPair writes the certificate (mode 0644) and the key (mode 0600),
// creating their directories with mode 0700 when missing. Each file is
// replaced atomically.
func WriteKeyPair(kp *KeyPair, certPath, keyPath string) error {
	if err := WriteFileAtomic(keyPath, kp.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(certPath, kp.CertPEM, 0o644)
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers see the old or the new content, never
// a part. The file gets exactly mode perm (umask does not apply); a missing
// parent directory is created with mode 0700.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func pairFromDER(der []byte, key crypto.Signer) (*KeyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func mustSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1)) // serials must be positive
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// ServerTLSConfig returns a TLS configuration (TLS 1.2 or later) that serves
// the serving pair and asks clients for a certificate signed by ca without
// requiring one (tls.VerifyClientCertIfGiven), so bearer-token clients still
// connect; a presented certificate that does not verify fails the handshake.
// The API server's authenticator checks the certificate again per request.
func ServerTLSConfig(serving *KeyPair, ca *CA) (*tls.Config, error) {
	c, err := serving.TLSCertificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// ClientTLSConfig returns a TLS configuration that trusts only ca and
// presents client (nil: no client certificate).
func ClientTLSConfig(ca *CA, client *KeyPair) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool()}
	if client != nil {
		c, err := client.TLSCertificate()
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// ServiceAccountKeyFile is the service-account token signing key (PEM,
// PKCS#8 ECDSA P-256), mode 0600.
const ServiceAccountKeyFile = "sa.key"

// LoadOrCreateSigningKey returns the ECDSA P-256 key kept at path,
// generating and writing it (mode 0600) when the file does not exist; the
// API server signs service-account tokens with it, so keeping it across
// restarts keeps issued tokens valid. created reports which happened.
func LoadOrCreateSigningKey(path string) (key *ecdsa.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		b, _ := pem.Decode(data)
		if b == nil {
			return nil, false, fmt.Errorf("signing key %q: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, false, fmt.Errorf("signing key %q: %w", path, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, false, fmt.Errorf("signing key %q: want an ECDSA P-256 key, got %T", path, k)
		}
		return ek, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, err
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	if err := WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, false, err
	}
	return key, true, nil
}
