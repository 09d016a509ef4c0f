package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

// DefaultServiceAccountIssuer is the issuer kube-apiserver deployments
// commonly use, and the default of ServiceAccountTokens.Issuer.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// ServiceAccountGetter reads service accounts, so that a token stops
// working when its account is deleted (or recreated with another UID). A
// missing account is an error for which apierrors.IsNotFound is true.
type ServiceAccountGetter interface {
	GetServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
}

// PodGetter reads pods, so that a token bound to a pod stops working when
// the pod is deleted (or recreated with another UID). A missing pod is an
// error for which apierrors.IsNotFound is true.
type PodGetter interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// ServiceAccountTokens issues and verifies bound service-account tokens:
// JWTs signed with ES256 carrying kube-apiserver's claims (iss, sub
// "system:serviceaccount:<ns>:<name>", aud, exp, iat, nbf, jti and the
// "kubernetes.io" claim with the namespace and the account's name and
// uid). It implements authenticator.Token; wrap it with
// NewServiceAccountAuthenticator to read the Authorization header. The
// fields must not change after first use; then it is safe for concurrent
// use.
type ServiceAccountTokens struct {
	// Key signs and verifies tokens. Required (see
	// pki.LoadOrCreateSigningKey).
	Key *ecdsa.PrivateKey
	// Issuer is the iss claim issued and required; "" means
	// DefaultServiceAccountIssuer.
	Issuer string
	// Audiences accepted when verifying (one must be in the token's aud);
	// the first is the default audience for Issue. Empty means
	// {Issuer}, as kube-apiserver defaults --api-audiences.
	Audiences []string
	// Accounts, when set, is consulted on every verification: the account
	// must exist with the token's uid.
	Accounts ServiceAccountGetter
	// Pods, when set, is consulted on every verification of a token bound
	// to a pod: the pod must exist with the token's pod uid.
	Pods PodGetter
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var _ authenticator.Token = (*ServiceAccountTokens)(nil)

// saClaims are the JWT claims; the JSON names are kube-apiserver's.
type saClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	K8s       struct {
		Namespace      string `json:"namespace"`
		ServiceAccount struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"serviceaccount"`
		Pod *struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"pod,omitempty"`
	} `json:"kubernetes.io"`
}

func (s *ServiceAccountTokens) issuer() string {
	if s.Issuer == "" {
		return DefaultServiceAccountIssuer
	}
	return s.Issuer
}

func (s *ServiceAccountTokens) audiences() []string {
	if len(s.Audiences) == 0 {
		return []string{s.issuer()}
	}
	return s.Audiences
}

func (s *ServiceAccountTokens) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Issue signs a token for the service account sa, valid for ttl from now,
// for audiences (nil: the first of Audiences), as the serviceaccounts/token
// subresource (TokenRequest) answers. It returns the token and its expiry.
func (s *ServiceAccountTokens) Issue(sa *corev1.ServiceAccount, audiences []string, ttl time.Duration) (string, time.Time, error) {
	return s.IssueBound(sa, nil, audiences, ttl)
}

// IssueBound is Issue for a token bound to pod (nil: unbound), as a
// TokenRequest with a Pod boundObjectRef and the kubelet's projected
// tokens carry: it names the pod, and verification (with Pods set) fails
// once the pod is gone. The pod must be in the account's namespace.
func (s *ServiceAccountTokens) IssueBound(sa *corev1.ServiceAccount, pod *corev1.Pod, audiences []string, ttl time.Duration) (string, time.Time, error) {
	if s.Key == nil {
		return "", time.Time{}, errors.New("service account tokens: no signing key")
	}
	if sa.Namespace == "" || sa.Name == "" {
		return "", time.Time{}, errors.New("service account tokens: account needs a namespace and a name")
	}
	if pod != nil && pod.Namespace != sa.Namespace {
		return "", time.Time{}, fmt.Errorf("service account tokens: pod %s/%s is not in namespace %q", pod.Namespace, pod.Name, sa.Namespace)
	}
	if len(audiences) == 0 {
		audiences = s.audiences()[:1]
	}
	now := s.now()
	exp := now.Add(ttl)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, err
	}
	c := saClaims{
		Issuer: s.issuer(), Subject: serviceaccount.MakeUsername(sa.Namespace, sa.Name),
		Audience: slices.Clone(audiences), Expiry: exp.Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(),
		ID: hex.EncodeToString(jti[:]),
	}
	c.K8s.Namespace = sa.Namespace
	c.K8s.ServiceAccount.Name = sa.Name
	c.K8s.ServiceAccount.UID = string(sa.UID)
	if pod != nil {
		c.K8s.Pod = &struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		}{pod.Name, string(pod.UID)}
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", time.Time{}, err
	}
	header := `{"alg":"ES256","kid":"` + s.keyID() + `"}`
	signingInput := b64(header) + "." + b64(string(payload))
	digest := sha256.Sum256([]byte(signingInput))
	r, sig, err := ecdsa.Sign(rand.Reader, s.Key, digest[:])
	if err != nil {
		return "", time.Time{}, err
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	sig.FillBytes(raw[32:])
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(raw), exp, nil
}

// keyID names the signing key by a hash of its public point.
func (s *ServiceAccountTokens) keyID() string {
	pub, _ := s.Key.PublicKey.Bytes()
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// errNotOurs is the internal signal that a token is not a JWT from this
// issuer, so another authenticator may try it.
var errNotOurs = errors.New("not a service account token")

// AuthenticateToken implements authenticator.Token. A token that is not a
// JWT of this issuer is ok=false with a nil error (another authenticator
// may accept it); one of this issuer that fails verification (signature,
// audience, expiry, deleted account) is an error.
func (s *ServiceAccountTokens) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	c, err := s.verify(token)
	if errors.Is(err, errNotOurs) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ns, name := c.K8s.Namespace, c.K8s.ServiceAccount.Name
	if serviceaccount.MakeUsername(ns, name) != c.Subject {
		return nil, false, errors.New("service account token: sub does not match the kubernetes.io claim")
	}
	if s.Accounts != nil {
		sa, err := s.Accounts.GetServiceAccount(ctx, ns, name)
		if apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("service account %s/%s has been deleted", ns, name)
		}
		if err != nil {
			return nil, false, err
		}
		if string(sa.UID) != c.K8s.ServiceAccount.UID {
			return nil, false, fmt.Errorf("service account UID (%s) does not match claim (%s)", sa.UID, c.K8s.ServiceAccount.UID)
		}
	}
	extra := map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=" + c.ID}}
	if c.K8s.Pod != nil {
		if s.Pods != nil {
			pod, err := s.Pods.GetPod(ctx, ns, c.K8s.Pod.Name)
			if apierrors.IsNotFound(err) {
				return nil, false, fmt.Errorf("pod %s/%s has been deleted", ns, c.K8s.Pod.Name)
			}
			if err != nil {
				return nil, false, err
			}
			if string(pod.UID) != c.K8s.Pod.UID {
				return nil, false, fmt.Errorf("pod UID (%s) does not match claim (%s)", pod.UID, c.K8s.Pod.UID)
			}
		}
		extra["authentication.kubernetes.io/pod-name"] = []string{c.K8s.Pod.Name}
		extra["authentication.kubernetes.io/pod-uid"] = []string{c.K8s.Pod.UID}
	}
	var aud authenticator.Audiences
	for _, a := range c.Audience {
		if slices.Contains(s.audiences(), a) {
			aud = append(aud, a)
		}
	}
	return &authenticator.Response{
		Audiences: aud,
		User: &user.DefaultInfo{
			Name:   c.Subject,
			UID:    c.K8s.ServiceAccount.UID,
			Groups: serviceaccount.MakeGroupNames(ns),
			Extra:  extra,
		},
	}, true, nil
}

// verify checks the token's form, issuer, signature, audience and time.
func (s *ServiceAccountTokens) verify(token string) (*saClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errNotOurs
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errNotOurs
	}
	var c saClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Issuer != s.issuer() {
		return nil, errNotOurs
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("service account token: bad header")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil || h.Alg != "ES256" {
		return nil, fmt.Errorf("service account token: unsupported algorithm %q", h.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("service account token: bad signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if s.Key.Curve != elliptic.P256() || !ecdsa.Verify(&s.Key.PublicKey, digest[:], r, sv) {
		return nil, errors.New("service account token: invalid signature")
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(s.audiences(), a) }) {
		return nil, errors.New("service account token: token audiences do not match the server's")
	}
	now := s.now().Unix()
	const leeway = 60 // seconds of clock skew tolerated, as upstream
	if now > c.Expiry+leeway {
		return nil, errors.New("service account token has expired")
	}
	if now+leeway < c.NotBefore {
		return nil, errors.New("service account token is not valid yet")
	}
	return &c, nil
}

// NewServiceAccountAuthenticator reads "Authorization: Bearer <jwt>" and
// verifies it with tokens; see ServiceAccountTokens.AuthenticateToken.
// Combine it with NewTokenFile and NewX509 through Union.
func NewServiceAccountAuthenticator(tokens *ServiceAccountTokens) authenticator.Request {
	return bearertoken.New(tokens)
}

// JWKS returns the JSON Web Key Set with the verification key, as
// kube-apiserver serves it at /openid/v1/jwks for external verifiers of
// service-account tokens.
func (s *ServiceAccountTokens) JWKS() ([]byte, error) {
	if s.Key == nil {
		return nil, errors.New("service account tokens: no signing key")
	}
	pt, err := s.Key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil || len(pt) != 65 {
		return nil, fmt.Errorf("service account tokens: encode public key: %v", err)
	}
	type jwk struct {
		Use string `json:"use"`
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Crv string `json:"crv"`
		Alg string `json:"alg"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}
	return json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{{Use: "sig", Kty: "EC", Kid: s.keyID(), Crv: "P-256", Alg: "ES256",
		X: base64.RawURLEncoding.EncodeToString(pt[1:33]), Y: base64.RawURLEncoding.EncodeToString(pt[33:])}}})
}

// OpenIDConfiguration returns the OIDC discovery document kube-apiserver
// serves at /.well-known/openid-configuration, pointing at jwksURI (""
// means Issuer + "/openid/v1/jwks").
func (s *ServiceAccountTokens) OpenIDConfiguration(jwksURI string) ([]byte, error) {
	if jwksURI == "" {
		jwksURI = strings.TrimSuffix(s.issuer(), "/") + "/openid/v1/jwks"
	}
	return json.Marshal(map[string]any{
		"issuer":                                s.issuer(),
		"jwks_uri":                              jwksURI,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
}
