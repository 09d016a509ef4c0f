package authz_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubelab/kubelab/reference/apiserver/authz"
)

// TestFromListers runs the authorizer over client-go informers fed with
// the bootstrap policy, as the server does over its own API.
func TestFromListers(t *testing.T) {
	var objs []runtime.Object
	objs = append(objs, authz.BootstrapPolicy().Objects()...)
	factory := informers.NewSharedInformerFactory(fake.NewClientset(objs...), 0)
	rbac := factory.Rbac().V1()
	lister := authz.FromListers(rbac.Roles().Lister(), rbac.RoleBindings().Lister(),
		rbac.ClusterRoles().Lister(), rbac.ClusterRoleBindings().Lister())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer %v did not sync", typ)
		}
	}
	az := authz.New(lister)
	sched := &user.DefaultInfo{Name: user.KubeScheduler, Groups: []string{user.AllAuthenticated}}
	for _, tc := range []struct {
		name  string
		attrs authorizer.AttributesRecord
		allow bool
	}{
		{"cluster role binding", authorizer.AttributesRecord{User: sched, Verb: "create", Namespace: "default", Resource: "pods", Subresource: "binding", Name: "p", ResourceRequest: true}, true},
		{"role binding in kube-system", authorizer.AttributesRecord{User: sched, Verb: "get", Namespace: "kube-system", Resource: "configmaps", Name: "extension-apiserver-authentication", ResourceRequest: true}, true},
		{"denied", authorizer.AttributesRecord{User: sched, Verb: "get", Namespace: "default", Resource: "secrets", Name: "s", ResourceRequest: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, err := az.Authorize(ctx, tc.attrs)
			if err != nil || (d == authorizer.DecisionAllow) != tc.allow {
				t.Errorf("decision %v reason %q err %v, want allow=%v", d, reason, err, tc.allow)
			}
		})
	}
}
