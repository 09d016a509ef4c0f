// Package authn authenticates API requests the way kube-apiserver does: by
// a client certificate signed by the cluster CA (user = CommonName, groups =
// Organization), by a bearer token from a static token file (upstream's
// --token-auth-file format), or by a service-account token (an ES256 JWT
// this package issues, see ServiceAccountTokens). An authenticated user
// also gets the group system:authenticated. A request that presents no
// credentials, or credentials that do not verify, is answered 401 with a
// metav1.Status (reason Unauthorized) unless its path is explicitly open to
// anonymous users.
//
// Authenticators implement k8s.io/apiserver's authenticator.Request, so the
// core may mix them with upstream ones. The client-certificate authenticator
// is this package's own (upstream's request/x509 pulls in component-base
// metrics); the token file is parsed and looked up by upstream's
// token/tokenfile and the Authorization header by upstream's
// request/bearertoken.
package authn

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
)

// UserFrom returns the user the authentication middleware stored in ctx.
// It is the same context key as k8s.io/apiserver/pkg/endpoints/request's
// UserFrom, so upstream filters and handlers see the same user.
func UserFrom(ctx context.Context) (user.Info, bool) {
	return genericrequest.UserFrom(ctx)
}

// WithUser returns a copy of ctx carrying u, as the middleware does; for
// handlers that impersonate and for tests.
func WithUser(ctx context.Context, u user.Info) context.Context {
	return genericrequest.WithUser(ctx, u)
}

// X509 authenticates a request by its TLS client certificate. The first
// peer certificate must chain to Roots (the others are intermediates) and
// allow client auth at the current time; its CommonName is the user name
// (an empty one is rejected) and its Organization the groups.
//
// A request without a client certificate is not an error: AuthenticateRequest
// returns ok=false and a nil error so the next authenticator may try. A
// certificate that does not verify is an error, and the request fails.
type X509 struct {
	// Roots are the trusted CAs. Required.
	Roots *x509.CertPool
	// Now returns the verification time; nil means time.Now.
	Now func() time.Time
}

var _ authenticator.Request = (*X509)(nil)

// NewX509 returns an X509 authenticator trusting roots.
func NewX509(roots *x509.CertPool) *X509 { return &X509{Roots: roots} }

// AuthenticateRequest implements authenticator.Request.
func (a *X509) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	leaf := req.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range req.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         a.Roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, false, fmt.Errorf("verifying client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, false, errors.New("client certificate has no CommonName (user name)")
	}
	return &authenticator.Response{User: &user.DefaultInfo{
		Name:   leaf.Subject.CommonName,
		Groups: slices.Clone(leaf.Subject.Organization),
	}}, true, nil
}

// NewTokenFile reads a static token file as kube-apiserver's
// --token-auth-file: CSV lines token,user,uid[,"group1,group2"]. It returns
// an authenticator that reads "Authorization: Bearer <token>"; an unknown
// token is an error (the request fails with 401), a request without the
// header is not. The file is read once; changes need a new authenticator.
func NewTokenFile(path string) (authenticator.Request, error) {
	t, err := tokenfile.NewCSV(path)
	if err != nil {
		return nil, fmt.Errorf("token file %q: %w", path, err)
	}
	return bearertoken.New(t), nil
}

// NewTokens is NewTokenFile over an in-memory map of token → user. The map
// is owned by the authenticator afterwards; do not modify it.
func NewTokens(tokens map[string]*user.DefaultInfo) authenticator.Request {
	return bearertoken.New(tokenfile.New(tokens))
}

// Union tries each authenticator in order and returns the first success.
// When none succeeds it returns ok=false and the errors of those that
// failed joined (nil when none failed, i.e. no credentials were presented).
func Union(auths ...authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		var errs []error
		for _, a := range auths {
			resp, ok, err := a.AuthenticateRequest(req)
			if ok {
				return resp, true, nil
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		return nil, false, errors.Join(errs...)
	})
}

// Options configure Middleware.
type Options struct {
	// AnonymousPaths are exact URL paths (such as "/healthz", "/livez",
	// "/readyz", "/version") that a request without credentials may reach
	// as user system:anonymous in group system:unauthenticated. Requests
	// presenting bad credentials are refused even there, as upstream does.
	// Empty: every request must authenticate.
	AnonymousPaths []string
	// OnFailure, when set, is called for each request answered 401 with
	// why (nil: no credentials were presented), for logs; the client only
	// sees "Unauthorized". It must be safe for concurrent use.
	OnFailure func(req *http.Request, err error)
}

// Middleware authenticates each request with auth and passes it to next
// with the user in its context (see UserFrom), adding group
// system:authenticated when missing. Otherwise it answers 401 with a
// metav1.Status {reason: Unauthorized, message: "Unauthorized"} and next is
// not called. It must run before authorization and admission.
func Middleware(auth authenticator.Request, opts Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		resp, ok, err := auth.AuthenticateRequest(req)
		switch {
		case ok:
			req = req.WithContext(WithUser(req.Context(), withAuthenticatedGroup(resp.User)))
		case err == nil && slices.Contains(opts.AnonymousPaths, req.URL.Path):
			req = req.WithContext(WithUser(req.Context(), &user.DefaultInfo{
				Name:   user.Anonymous,
				Groups: []string{user.AllUnauthenticated},
			}))
		default:
			if opts.OnFailure != nil {
				opts.OnFailure(req, err)
			}
			WriteStatus(w, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Filter returns Middleware as a filter for a server's handler chain:
// Filter(auth, opts)(next) == Middleware(auth, opts, next).
func Filter(auth authenticator.Request, opts Options) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return Middleware(auth, opts, next) }
}

func withAuthenticatedGroup(u user.Info) user.Info {
	groups := u.GetGroups()
	if slices.Contains(groups, user.AllAuthenticated) {
		return u
	}
	return &user.DefaultInfo{
		Name:   u.GetName(),
		UID:    u.GetUID(),
		Groups: append(slices.Clone(groups), user.AllAuthenticated),
		Extra:  u.GetExtra(),
	}
}

// WriteStatus writes err as a metav1.Status JSON body (kind Status,
// apiVersion v1) with the status's HTTP code, as kube-apiserver answers
// errors. An error that is not an apierrors.APIStatus becomes 500.
func WriteStatus(w http.ResponseWriter, err error) {
	var st metav1.Status
	if s, ok := err.(apierrors.APIStatus); ok || errors.As(err, &s) {
		st = s.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	body, _ := json.Marshal(&st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(body)
}

// SelfSubjectReview returns the status of an authentication.k8s.io/v1
// SelfSubjectReview (`kubectl auth whoami`) for the requesting user u.
func SelfSubjectReview(u user.Info) authenticationv1.SelfSubjectReviewStatus {
	extra := map[string]authenticationv1.ExtraValue{}
	for k, v := range u.GetExtra() {
		extra[k] = slices.Clone(v)
	}
	if len(extra) == 0 {
		extra = nil
	}
	return authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{
		Username: u.GetName(), UID: u.GetUID(), Groups: slices.Clone(u.GetGroups()), Extra: extra,
	}}
}

// ReviewToken evaluates an authentication.k8s.io/v1 TokenReview: whether
// spec.Token authenticates with auth as a bearer token (any authenticator
// that reads the Authorization header, e.g. a Union of NewTokenFile and
// NewServiceAccountAuthenticator). When spec.Audiences is set and the
// authenticator reports audiences (service-account tokens do), they must
// intersect; Status.Audiences is that intersection. Whether the caller may
// ask (create tokenreviews) is the caller's authorization.
func ReviewToken(ctx context.Context, auth authenticator.Request, spec authenticationv1.TokenReviewSpec) authenticationv1.TokenReviewStatus {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/", nil)
	req.Header.Set("Authorization", "Bearer "+spec.Token)
	resp, ok, err := auth.AuthenticateRequest(req)
	switch {
	case err != nil:
		return authenticationv1.TokenReviewStatus{Error: err.Error()}
	case !ok:
		return authenticationv1.TokenReviewStatus{Error: "token not recognized"}
	}
	aud := []string(resp.Audiences)
	if len(spec.Audiences) > 0 && len(resp.Audiences) > 0 {
		aud = nil
		for _, a := range spec.Audiences {
			if slices.Contains(resp.Audiences, a) {
				aud = append(aud, a)
			}
		}
		if len(aud) == 0 {
			return authenticationv1.TokenReviewStatus{Error: "token audiences do not match the requested audiences"}
		}
	}
	st := SelfSubjectReview(withAuthenticatedGroup(resp.User))
	return authenticationv1.TokenReviewStatus{Authenticated: true, User: st.UserInfo, Audiences: aud}
}
