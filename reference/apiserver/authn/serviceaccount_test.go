package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
)

type fakeAccounts map[string]*corev1.ServiceAccount

func (f fakeAccounts) GetServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	if sa, ok := f[ns+"/"+name]; ok {
		return sa, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), name)
}

func sa(ns, name, uid string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServiceAccountTokens(t *testing.T) {
	key := newKey(t)
	builder := sa("ns1", "builder", "uid-1")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	issuer := &ServiceAccountTokens{Key: key, Audiences: []string{"api", "other"}, Now: clock}
	verifier := &ServiceAccountTokens{Key: key, Audiences: []string{"api", "other"}, Now: clock,
		Accounts: fakeAccounts{"ns1/builder": builder, "ns1/recreated": sa("ns1", "recreated", "uid-new")}}

	issue := func(acct *corev1.ServiceAccount, aud []string, ttl time.Duration) string {
		tok, exp, err := issuer.Issue(acct, aud, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(now.Add(ttl)) {
			t.Errorf("expiry %v, want %v", exp, now.Add(ttl))
		}
		return tok
	}
	good := issue(builder, nil, time.Hour)
	tampered := func() string {
		p := strings.Split(good, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(p[1])
		payload = []byte(strings.Replace(string(payload), "builder", "admin00", -1))
		return p[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + p[2]
	}()
	otherKey, _, _ := (&ServiceAccountTokens{Key: newKey(t), Audiences: []string{"api"}, Now: clock}).Issue(builder, nil, time.Hour)
	otherIssuer, _, _ := (&ServiceAccountTokens{Key: key, Issuer: "https://elsewhere", Audiences: []string{"api"}, Now: clock}).Issue(builder, nil, time.Hour)

	for _, tc := range []struct {
		name    string
		token   string
		at      time.Duration // verifier clock offset
		wantOK  bool
		wantErr string
	}{
		{name: "valid", token: good, wantOK: true},
		{name: "second audience", token: issue(builder, []string{"other"}, time.Hour), wantOK: true},
		{name: "foreign audience", token: issue(builder, []string{"vault"}, time.Hour), wantErr: "audiences"},
		{name: "expired", token: good, at: 2 * time.Hour, wantErr: "expired"},
		{name: "within clock skew", token: good, at: time.Hour + 30*time.Second, wantOK: true},
		{name: "not yet valid", token: good, at: -time.Hour, wantErr: "not valid yet"},
		{name: "tampered payload", token: tampered, wantErr: "invalid signature"},
		{name: "another key", token: otherKey, wantErr: "invalid signature"},
		{name: "deleted account", token: issue(sa("ns1", "gone", "uid-2"), nil, time.Hour), wantErr: "has been deleted"},
		{name: "recreated account", token: issue(sa("ns1", "recreated", "uid-old"), nil, time.Hour), wantErr: "does not match"},
		{name: "another issuer is not ours", token: otherIssuer},
		{name: "static token is not ours", token: "abc123"},
		{name: "garbage with dots is not ours", token: "a.b.c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := *verifier
			v.Now = func() time.Time { return now.Add(tc.at) }
			resp, ok, err := v.AuthenticateToken(context.Background(), tc.token)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v (err %v)", ok, tc.wantOK, err)
			}
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if !ok {
				return
			}
			u := resp.User
			if u.GetName() != "system:serviceaccount:ns1:builder" || u.GetUID() != "uid-1" ||
				!slices.Equal(u.GetGroups(), []string{"system:serviceaccounts", "system:serviceaccounts:ns1"}) {
				t.Errorf("user %q uid %q groups %q", u.GetName(), u.GetUID(), u.GetGroups())
			}
		})
	}

	if _, _, err := (&ServiceAccountTokens{}).Issue(builder, nil, time.Hour); err == nil {
		t.Error("issued without a key")
	}
}

// TestServiceAccountThroughMiddleware: a service-account JWT and a static
// token both authenticate through one Union; a JWT from another key does
// not fall through to success.
func TestServiceAccountThroughMiddleware(t *testing.T) {
	key := newKey(t)
	tokens := &ServiceAccountTokens{Key: key}
	jwt, _, err := tokens.Issue(sa("default", "app", "u"), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, _ := (&ServiceAccountTokens{Key: newKey(t)}).Issue(sa("default", "app", "u"), nil, time.Hour)
	auth := Union(NewTokens(map[string]*user.DefaultInfo{"static": {Name: "bob"}}), NewServiceAccountAuthenticator(tokens))
	var got string
	h := Middleware(auth, Options{}, httpHandlerFunc(func(u user.Info) { got = u.GetName() }))
	for _, tc := range []struct {
		name, token string
		wantCode    int
		wantUser    string
	}{
		{"service account", jwt, 200, "system:serviceaccount:default:app"},
		{"static", "static", 200, "bob"},
		{"forged", forged, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = ""
			r := httptest.NewRequest("GET", "/api", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || got != tc.wantUser {
				t.Errorf("code %d user %q, want %d %q", w.Code, got, tc.wantCode, tc.wantUser)
			}
		})
	}
}

// httpHandlerFunc returns a handler that reports the context's user.
func httpHandlerFunc(f func(user.Info)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		f(u)
	})
}

type fakePods map[string]*corev1.Pod

func (f fakePods) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if p, ok := f[ns+"/"+name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

func TestBoundServiceAccountTokens(t *testing.T) {
	tokens := &ServiceAccountTokens{Key: newKey(t), Pods: fakePods{
		"ns1/web":      {ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web", UID: "pod-1"}},
		"ns1/replaced": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "replaced", UID: "pod-new"}},
	}}
	acct := sa("ns1", "builder", "uid-1")
	pod := func(name, uid string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name, UID: types.UID(uid)}}
	}
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		wantErr string
	}{
		{"live pod", pod("web", "pod-1"), ""},
		{"deleted pod", pod("gone", "pod-2"), "has been deleted"},
		{"recreated pod", pod("replaced", "pod-old"), "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, _, err := tokens.IssueBound(acct, tc.pod, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			resp, ok, err := tokens.AuthenticateToken(context.Background(), tok)
			if tc.wantErr != "" {
				if ok || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ok=%v err=%v, want %q", ok, err, tc.wantErr)
				}
				return
			}
			if !ok || err != nil {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if x := resp.User.GetExtra(); !slices.Equal(x["authentication.kubernetes.io/pod-name"], []string{"web"}) ||
				!slices.Equal(x["authentication.kubernetes.io/pod-uid"], []string{"pod-1"}) {
				t.Errorf("extra %v", x)
			}
		})
	}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns2", Name: "web"}}
	if _, _, err := tokens.IssueBound(acct, other, nil, time.Hour); err == nil {
		t.Error("bound a token to a pod of another namespace")
	}
}

func TestReviewToken(t *testing.T) {
	tokens := &ServiceAccountTokens{Key: newKey(t), Audiences: []string{"api", "vault"}}
	jwt, _, _ := tokens.Issue(sa("ns1", "app", "u1"), []string{"vault"}, time.Hour)
	auth := Union(NewTokens(map[string]*user.DefaultInfo{"static": {Name: "bob", Groups: []string{"dev"}}}), NewServiceAccountAuthenticator(tokens))
	for _, tc := range []struct {
		name      string
		spec      authenticationv1.TokenReviewSpec
		wantUser  string
		wantAud   []string
		wantError bool
	}{
		{"static token", authenticationv1.TokenReviewSpec{Token: "static"}, "bob", nil, false},
		{"service account token", authenticationv1.TokenReviewSpec{Token: jwt}, "system:serviceaccount:ns1:app", []string{"vault"}, false},
		{"matching audience", authenticationv1.TokenReviewSpec{Token: jwt, Audiences: []string{"x", "vault"}}, "system:serviceaccount:ns1:app", []string{"vault"}, false},
		{"other audience", authenticationv1.TokenReviewSpec{Token: jwt, Audiences: []string{"api"}}, "", nil, true},
		{"unknown token", authenticationv1.TokenReviewSpec{Token: "nope"}, "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := ReviewToken(context.Background(), auth, tc.spec)
			if st.Authenticated == tc.wantError || (st.Error != "") != tc.wantError {
				t.Fatalf("status %+v", st)
			}
			if tc.wantError {
				return
			}
			if st.User.Username != tc.wantUser || !slices.Contains(st.User.Groups, user.AllAuthenticated) || !slices.Equal(st.Audiences, tc.wantAud) {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// TestJWKSVerifies rebuilds the public key from the JWKS and checks a
// token's signature with it, as an external verifier would.
func TestJWKSVerifies(t *testing.T) {
	tokens := &ServiceAccountTokens{Key: newKey(t)}
	tok, _, _ := tokens.Issue(sa("ns1", "app", "u1"), nil, time.Hour)
	raw, err := tokens.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kty, Crv, Alg, X, Y, Kid string }
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", raw, err)
	}
	k := set.Keys[0]
	x, _ := base64.RawURLEncoding.DecodeString(k.X)
	y, _ := base64.RawURLEncoding.DecodeString(k.Y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(hdr), `"kid":"`+k.Kid+`"`) || k.Alg != "ES256" || k.Crv != "P-256" || k.Kty != "EC" {
		t.Errorf("header %s, key %+v", hdr, k)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("token does not verify with the published key")
	}
	doc, _ := tokens.OpenIDConfiguration("")
	var oidc map[string]any
	json.Unmarshal(doc, &oidc)
	if oidc["issuer"] != DefaultServiceAccountIssuer || oidc["jwks_uri"] != DefaultServiceAccountIssuer+"/openid/v1/jwks" {
		t.Errorf("discovery %s", doc)
	}
}
