package admission

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// ServiceAccountName is the ServiceAccount plugin's name.
const ServiceAccountName = "ServiceAccount"

// DefaultServiceAccount is the account a pod runs as when it names none.
const DefaultServiceAccount = "default"

// ServiceAccount is the defaulting half of upstream's ServiceAccount
// plugin: on pod CREATE (main resource) an empty spec.serviceAccountName
// becomes "default". It does not check that the account exists and does
// not mount API tokens.
type ServiceAccount struct{}

var _ MutatingPlugin = (*ServiceAccount)(nil)

// NewServiceAccount returns the plugin.
func NewServiceAccount() *ServiceAccount { return &ServiceAccount{} }

// Name implements Plugin.
func (*ServiceAccount) Name() string { return ServiceAccountName }

// Admit implements MutatingPlugin.
func (*ServiceAccount) Admit(_ context.Context, a *Attributes) error {
	if a.Operation != Create || a.Resource.Group != "" || a.Resource.Resource != "pods" || a.Subresource != "" {
		return nil
	}
	pod, ok := a.Object.(*corev1.Pod)
	if !ok {
		return wrongType(a, a.Object)
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccount
	}
	return nil
}
