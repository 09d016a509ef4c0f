package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func mustCA(t *testing.T, dir string) *CA {
	t.Helper()
	ca, _, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	return ca
}

func TestCAReusedAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca1, created, err := LoadOrCreateCA(dir)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	ca2, created, err := LoadOrCreateCA(dir)
	if err != nil || created {
		t.Fatalf("restart: created=%v err=%v", created, err)
	}
	if !bytes.Equal(ca1.CertPEM, ca2.CertPEM) || !bytes.Equal(ca1.KeyPEM, ca2.KeyPEM) {
		t.Fatal("restart generated a different CA")
	}
	// A certificate issued before the restart verifies with the reloaded CA.
	kp, err := ca1.IssueClient(AdminIdentity())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca2.VerifyClient(kp.Cert); err != nil {
		t.Fatalf("pre-restart client cert rejected after restart: %v", err)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca := mustCA(t, dir)
	if _, _, err := ca.LoadOrIssueServing(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), []string{"localhost"}, nil); err != nil {
		t.Fatal(err)
	}
	kcfg := filepath.Join(dir, "admin.kubeconfig")
	if err := ca.WriteClientKubeconfig(kcfg, "https://127.0.0.1:6443", AdminIdentity()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want os.FileMode
	}{
		{"", 0o700},
		{CACertFile, 0o644},
		{CAKeyFile, 0o600},
		{"apiserver.crt", 0o644},
		{"apiserver.key", 0o600},
		{"admin.kubeconfig", 0o600},
	} {
		t.Run("file "+tc.name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Errorf("mode %v, want %v", got, tc.want)
			}
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestLoadOrCreateCAHalfPresent(t *testing.T) {
	for _, missing := range []string{CACertFile, CAKeyFile} {
		t.Run("missing "+missing, func(t *testing.T) {
			dir := t.TempDir()
			mustCA(t, dir)
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadOrCreateCA(dir); !errors.Is(err, ErrCAKeyMissing) {
				t.Fatalf("err = %v, want ErrCAKeyMissing", err)
			}
		})
	}
}

func TestLoadOrCreateCAMismatchedKey(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	mustCA(t, dir)
	mustCA(t, other)
	key, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateCA(dir); err == nil {
		t.Fatal("a key from another CA was accepted")
	}
}

func TestClientIdentities(t *testing.T) {
	ca := mustCA(t, t.TempDir())
	for _, tc := range []struct {
		name       string
		id         Identity
		wantUser   string
		wantGroups []string
	}{
		{"admin", AdminIdentity(), "kubernetes-admin", []string{"system:masters"}},
		{"scheduler", SchedulerIdentity(), "system:kube-scheduler", nil},
		{"controller manager", ControllerManagerIdentity(), "system:kube-controller-manager", nil},
		{"proxy", ProxyIdentity(), "system:kube-proxy", nil},
		{"node", NodeIdentity("worker-1"), "system:node:worker-1", []string{"system:nodes"}},
		{"several groups", Identity{User: "jane", Groups: []string{"dev", "ops"}}, "jane", []string{"dev", "ops"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := ca.IssueClient(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ca.VerifyClient(kp.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if got.User != tc.wantUser || !slices.Equal(got.Groups, tc.wantGroups) {
				t.Errorf("got %+v, want user %q groups %q", got, tc.wantUser, tc.wantGroups)
			}
		})
	}
	if _, err := ca.IssueClient(Identity{}); err == nil {
		t.Error("a client certificate without a user was issued")
	}
}

func TestVerifyClientRejects(t *testing.T) {
	ca := mustCA(t, t.TempDir())
	other := mustCA(t, t.TempDir())
	foreign, _ := other.IssueClient(AdminIdentity())
	serving, _ := ca.IssueServing([]string{"localhost"}, nil)
	for _, tc := range []struct {
		name string
		kp   *KeyPair
	}{
		{"signed by another CA", foreign},
		{"serving certificate used as client", serving},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ca.VerifyClient(tc.kp.Cert); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		kp, _ := ca.IssueClient(AdminIdentity())
		later := *ca
		later.Now = func() time.Time { return kp.Cert.NotAfter.Add(time.Hour) }
		if _, err := later.VerifyClient(kp.Cert); err == nil {
			t.Error("accepted")
		}
	})
}

// TestTLSRoundTrip serves HTTPS with a serving certificate and requires a
// client certificate; a client built from the written kubeconfig handshakes
// over 127.0.0.1 and over localhost, and the server sees its identity.
func TestTLSRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir)
	serving, _, err := ca.LoadOrIssueServing(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"),
		[]string{"localhost", "kubernetes.default.svc"}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	tlsCert, err := serving.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.TLS.PeerCertificates[0]
		fmt.Fprintf(w, "%s %v", c.Subject.CommonName, c.Subject.Organization)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{tlsCert},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run("via "+host, func(t *testing.T) {
			server := "https://" + net.JoinHostPort(host, port)
			kcfg := filepath.Join(t.TempDir(), "kubeconfig")
			if err := ca.WriteClientKubeconfig(kcfg, server, AdminIdentity()); err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kcfg)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != server {
				t.Errorf("kubeconfig server %q, want %q", cfg.Host, server)
			}
			tc, err := restTLS(cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
			resp, err := client.Get(server + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if got, want := string(body), "kubernetes-admin [system:masters]"; got != want {
				t.Errorf("server saw %q, want %q", got, want)
			}
		})
	}

	t.Run("client without certificate is refused", func(t *testing.T) {
		tc := &tls.Config{RootCAs: ca.Pool()}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		if resp, err := client.Get(srv.URL); err == nil {
			resp.Body.Close()
			t.Fatal("handshake without a client certificate succeeded")
		}
	})
	t.Run("name not in certificate is refused", func(t *testing.T) {
		kp, _ := ca.IssueClient(AdminIdentity())
		tc, _ := restTLS(ca.CertPEM, kp.CertPEM, kp.KeyPEM)
		tc.ServerName = "evil.example"
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		if resp, err := client.Get(srv.URL); err == nil {
			resp.Body.Close()
			t.Fatal("server certificate accepted for a name it does not carry")
		}
	})
}

func restTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: x509Pool(caPEM)}
	return tc, nil
}

func TestLoadOrIssueServing(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir)
	crt, key := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
	lo := []net.IP{net.ParseIP("127.0.0.1")}
	first, reissued, err := ca.LoadOrIssueServing(crt, key, []string{"localhost"}, lo)
	if err != nil || !reissued {
		t.Fatalf("first: reissued=%v err=%v", reissued, err)
	}
	for _, tc := range []struct {
		name         string
		ca           *CA
		dns          []string
		ips          []net.IP
		wantReissued bool
	}{
		{"same names reuse", ca, []string{"localhost"}, lo, false},
		{"subset reuses", ca, nil, lo, false},
		{"new IP reissues", ca, []string{"localhost"}, []net.IP{net.ParseIP("192.168.50.2")}, true},
		{"new CA reissues", mustCA(t, t.TempDir()), []string{"localhost"}, lo, true},
		{"near expiry reissues", func() *CA {
			c := *ca
			c.Now = func() time.Time { return first.Cert.NotAfter.Add(-RenewBefore / 2) }
			return &c
		}(), []string{"localhost"}, lo, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start each case from the first certificate.
			if err := WriteKeyPair(first, crt, key); err != nil {
				t.Fatal(err)
			}
			kp, reissued, err := tc.ca.LoadOrIssueServing(crt, key, tc.dns, tc.ips)
			if err != nil {
				t.Fatal(err)
			}
			if reissued != tc.wantReissued {
				t.Errorf("reissued = %v, want %v", reissued, tc.wantReissued)
			}
			if !reissued && !bytes.Equal(kp.CertPEM, first.CertPEM) {
				t.Error("reused pair differs from the file")
			}
		})
	}
	if _, err := ca.IssueServing(nil, nil); err == nil {
		t.Error("serving certificate without names was issued")
	}
}

func x509Pool(caPEM []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(caPEM)
	return p
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), ServiceAccountKeyFile)
	k1, created, err := LoadOrCreateSigningKey(path)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	k2, created, err := LoadOrCreateSigningKey(path)
	if err != nil || created {
		t.Fatalf("restart: created=%v err=%v", created, err)
	}
	if !k1.Equal(k2) {
		t.Error("restart generated a different key")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateSigningKey(path); err == nil {
		t.Error("garbage accepted as a key")
	}
}

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	opts := EnsureOptions{Server: "https://127.0.0.1:6443", IPs: []net.IP{net.ParseIP("10.96.0.1")}}
	d1, err := Ensure(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !d1.CACreated {
		t.Error("first start did not create the CA")
	}
	for _, n := range append(DefaultServingNames, "127.0.0.1", "10.96.0.1") {
		if err := d1.Serving.Cert.VerifyHostname(n); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	for _, tc := range []struct {
		file, user string
	}{
		{AdminKubeconfigFile, "kubernetes-admin"},
		{SchedulerKubeconfigFile, "system:kube-scheduler"},
		{ControllerManagerKubeconfigFile, "system:kube-controller-manager"},
		{ProxyKubeconfigFile, "system:kube-proxy"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := clientcmd.LoadFromFile(d1.Path(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			ctx := cfg.Contexts[cfg.CurrentContext]
			if ctx == nil || ctx.AuthInfo != tc.user || cfg.Clusters[ctx.Cluster].Server != opts.Server {
				t.Fatalf("kubeconfig context %+v", ctx)
			}
			kp, err := tls.X509KeyPair(cfg.AuthInfos[tc.user].ClientCertificateData, cfg.AuthInfos[tc.user].ClientKeyData)
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := x509.ParseCertificate(kp.Certificate[0])
			if id, err := d1.CA.VerifyClient(leaf); err != nil || id.User != tc.user {
				t.Errorf("identity %+v err %v", id, err)
			}
		})
	}
	// The kubelet client certificate, on disk and in DataDir.
	kc, err := LoadKeyPair(d1.Path(KubeletClientCertFile), d1.Path(KubeletClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := d1.CA.VerifyClient(kc.Cert); err != nil || id.User != KubeletClientUser || len(id.Groups) != 1 || id.Groups[0] != "system:masters" {
		t.Errorf("kubelet client identity %+v err %v", id, err)
	}
	if !bytes.Equal(kc.CertPEM, d1.KubeletClient.CertPEM) {
		t.Error("DataDir.KubeletClient is not the certificate written")
	}
	d2, err := Ensure(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d2.CACreated || !bytes.Equal(d1.CA.CertPEM, d2.CA.CertPEM) || !bytes.Equal(d1.Serving.CertPEM, d2.Serving.CertPEM) || !d1.SigningKey.Equal(d2.SigningKey) {
		t.Error("restart did not reuse the CA, serving certificate and signing key")
	}
	if _, err := Ensure(dir, EnsureOptions{}); err == nil {
		t.Error("Ensure without a server URL succeeded")
	}
}
