package kubelet

import (
	"context"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// tokenManager gets service account tokens for projected volumes through
// the TokenRequest API, bound to the pod, and reuses each until 80% of its
// lifetime has passed, as upstream's token manager does.
type tokenManager struct {
	client kubernetes.Interface
	now    func() time.Time

	mu     sync.Mutex // guards tokens
	tokens map[tokenKey]issuedToken
}

type tokenKey struct {
	pod      types.UID
	audience string
	exp      int64
}

type issuedToken struct {
	token           string
	issued, expires time.Time
}

func newTokenManager(client kubernetes.Interface, now func() time.Time) *tokenManager {
	return &tokenManager{client: client, now: now, tokens: map[tokenKey]issuedToken{}}
}

// get returns a token of pod's service account for audience.
func (m *tokenManager) get(ctx context.Context, pod *corev1.Pod, audience string, exp int64) (string, error) {
	key := tokenKey{pod.UID, audience, exp}
	now := m.now()
	m.mu.Lock()
	t, ok := m.tokens[key]
	m.mu.Unlock()
	if ok && now.Before(t.issued.Add(t.expires.Sub(t.issued)*8/10)) {
		return t.token, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	resp, err := m.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	expires := resp.Status.ExpirationTimestamp.Time
	if expires.IsZero() {
		expires = now.Add(time.Duration(exp) * time.Second)
	}
	m.mu.Lock()
	m.tokens[key] = issuedToken{token: resp.Status.Token, issued: now, expires: expires}
	m.mu.Unlock()
	return resp.Status.Token, nil
}

// forget drops the tokens of a pod that is gone.
func (m *tokenManager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.tokens {
		if k.pod == uid {
			delete(m.tokens, k)
		}
	}
}
