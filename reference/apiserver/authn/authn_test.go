package authn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

const tokenCSV = `admin-token,alice,uid-1,"system:masters,dev"
node-token,system:node:n1,uid-2,system:nodes
plain-token,bob,uid-3
`

type fixture struct {
	ca     *pki.CA
	srv    *httptest.Server
	tokens string
}

// newFixture serves HTTPS with authn.Middleware over a handler that echoes
// the user as "name|group,group", with the CA's certificates and the token
// file above.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueServing([]string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(tokenCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	tokAuth, err := NewTokenFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := UserFrom(r.Context())
		if !ok {
			http.Error(w, "no user", 500)
			return
		}
		fmt.Fprintf(w, "%s|%s", u.GetName(), strings.Join(u.GetGroups(), ","))
	})
	srv := httptest.NewUnstartedServer(Middleware(Union(NewX509(ca.Pool()), tokAuth), opts, echo))
	srv.TLS, err = pki.ServerTLSConfig(serving, ca)
	if err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &fixture{ca: ca, srv: srv, tokens: tokens}
}

func (f *fixture) client(t *testing.T, id *pki.Identity) *http.Client {
	t.Helper()
	var kp *pki.KeyPair
	if id != nil {
		var err error
		if kp, err = f.ca.IssueClient(*id); err != nil {
			t.Fatal(err)
		}
	}
	tc, err := pki.ClientTLSConfig(f.ca, kp)
	if err != nil {
		t.Fatal(err)
	}
	tc.ServerName = "localhost"
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, Options{AnonymousPaths: []string{"/healthz"}})
	admin, node := pki.AdminIdentity(), pki.NodeIdentity("n1")
	for _, tc := range []struct {
		name     string
		id       *pki.Identity
		token    string
		path     string
		wantCode int
		wantBody string
	}{
		{name: "admin certificate", id: &admin, path: "/api", wantCode: 200, wantBody: "kubernetes-admin|system:masters,system:authenticated"},
		{name: "node certificate", id: &node, path: "/api", wantCode: 200, wantBody: "system:node:n1|system:nodes,system:authenticated"},
		{name: "token with groups", token: "admin-token", path: "/api", wantCode: 200, wantBody: "alice|system:masters,dev,system:authenticated"},
		{name: "token single group", token: "node-token", path: "/api", wantCode: 200, wantBody: "system:node:n1|system:nodes,system:authenticated"},
		{name: "token without groups", token: "plain-token", path: "/api", wantCode: 200, wantBody: "bob|system:authenticated"},
		{name: "certificate wins over token", id: &admin, token: "plain-token", path: "/api", wantCode: 200, wantBody: "kubernetes-admin|system:masters,system:authenticated"},
		{name: "bad token", token: "nope", path: "/api", wantCode: 401},
		{name: "anonymous", path: "/api", wantCode: 401},
		{name: "anonymous on an open path", path: "/healthz", wantCode: 200, wantBody: "system:anonymous|system:unauthenticated"},
		{name: "bad token on an open path", token: "nope", path: "/healthz", wantCode: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", f.srv.URL+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := f.client(t, tc.id).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("code %d, want %d; body %s", resp.StatusCode, tc.wantCode, body)
			}
			if tc.wantCode == 401 {
				checkUnauthorized(t, resp, body)
				return
			}
			if string(body) != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
		})
	}
}

func checkUnauthorized(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("body is not a Status: %v: %s", err, body)
	}
	want := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: "Unauthorized", Reason: metav1.StatusReasonUnauthorized, Code: 401,
	}
	if st.Kind != want.Kind || st.APIVersion != want.APIVersion || st.Status != want.Status ||
		st.Message != want.Message || st.Reason != want.Reason || st.Code != want.Code {
		t.Errorf("status %+v, want %+v", st, want)
	}
}

// TestX509 exercises the certificate authenticator directly, with TLS
// states a handshake under VerifyClientCertIfGiven would never produce.
func TestX509(t *testing.T) {
	ca, _, _ := pki.LoadOrCreateCA(t.TempDir())
	other, _, _ := pki.LoadOrCreateCA(t.TempDir())
	good, _ := ca.IssueClient(pki.NodeIdentity("n2"))
	foreign, _ := other.IssueClient(pki.AdminIdentity())
	serving, _ := ca.IssueServing([]string{"localhost"}, nil)
	a := NewX509(ca.Pool())
	for _, tc := range []struct {
		name       string
		state      *tls.ConnectionState
		now        time.Time
		wantOK     bool
		wantErr    bool
		wantUser   string
		wantGroups []string
	}{
		{name: "plain HTTP", state: nil},
		{name: "TLS without certificate", state: &tls.ConnectionState{}},
		{name: "valid", state: peer(good.Cert), wantOK: true, wantUser: "system:node:n2", wantGroups: []string{"system:nodes"}},
		{name: "another CA", state: peer(foreign.Cert), wantErr: true},
		{name: "serving certificate", state: peer(serving.Cert), wantErr: true},
		{name: "expired", state: peer(good.Cert), now: good.Cert.NotAfter.Add(time.Minute), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.Now = nil
			if !tc.now.IsZero() {
				a.Now = func() time.Time { return tc.now }
			}
			req := httptest.NewRequest("GET", "/api", nil)
			req.TLS = tc.state
			resp, ok, err := a.AuthenticateRequest(req)
			if ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Fatalf("ok=%v err=%v, want ok=%v err=%v", ok, err, tc.wantOK, tc.wantErr)
			}
			if ok && (resp.User.GetName() != tc.wantUser || !slices.Equal(resp.User.GetGroups(), tc.wantGroups)) {
				t.Errorf("user %q %q, want %q %q", resp.User.GetName(), resp.User.GetGroups(), tc.wantUser, tc.wantGroups)
			}
		})
	}
}

func peer(c *x509.Certificate) *tls.ConnectionState {
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
}

func TestTokens(t *testing.T) {
	a := NewTokens(map[string]*user.DefaultInfo{"t1": {Name: "carol", Groups: []string{"g"}}})
	for _, tc := range []struct {
		name     string
		header   string
		wantOK   bool
		wantErr  bool
		wantUser string
	}{
		{name: "no header"},
		{name: "basic auth is not ours", header: "Basic Zm9vOmJhcg=="},
		{name: "known token", header: "Bearer t1", wantOK: true, wantUser: "carol"},
		{name: "scheme is case-insensitive", header: "bearer t1", wantOK: true, wantUser: "carol"},
		{name: "unknown token", header: "Bearer t2", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, ok, err := a.AuthenticateRequest(req)
			if ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Fatalf("ok=%v err=%v, want ok=%v err=%v", ok, err, tc.wantOK, tc.wantErr)
			}
			if ok && resp.User.GetName() != tc.wantUser {
				t.Errorf("user %q, want %q", resp.User.GetName(), tc.wantUser)
			}
			if ok && req.Header.Get("Authorization") != "" {
				t.Error("the Authorization header is passed on after authentication")
			}
		})
	}
}

func TestNewTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.csv")
	os.WriteFile(short, []byte("tok,user\n"), 0o600)
	for _, tc := range []struct{ name, path string }{
		{"missing file", filepath.Join(dir, "absent.csv")},
		{"too few columns", short},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTokenFile(tc.path); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestSelfSubjectReview(t *testing.T) {
	st := SelfSubjectReview(&user.DefaultInfo{Name: "jane", UID: "u1", Groups: []string{"dev", "system:authenticated"},
		Extra: map[string][]string{"scopes": {"view"}}})
	if st.UserInfo.Username != "jane" || st.UserInfo.UID != "u1" || !slices.Equal(st.UserInfo.Groups, []string{"dev", "system:authenticated"}) ||
		len(st.UserInfo.Extra["scopes"]) != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestOnFailure(t *testing.T) {
	var got []string
	h := Middleware(NewTokens(map[string]*user.DefaultInfo{"t": {Name: "u"}}),
		Options{OnFailure: func(_ *http.Request, err error) { got = append(got, fmt.Sprint(err)) }},
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, tok := range []string{"", "bad", "t"} {
		r := httptest.NewRequest("GET", "/api", nil)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if want := []string{"<nil>", "invalid bearer token"}; !slices.Equal(got, want) {
		t.Errorf("OnFailure saw %q, want %q", got, want)
	}
}
