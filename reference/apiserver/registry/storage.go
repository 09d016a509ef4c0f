package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
	"github.com/kubelab/kubelab/spec"
)

// OptimisticLockErrorMsg is upstream's message for a stale resourceVersion.
const OptimisticLockErrorMsg = "the object has been modified; please apply your changes to the latest version and try again"

func semanticEqual(a, b any) bool { return equality.Semantic.DeepEqual(a, b) }

// Hooks run after a successful write, for side effects such as releasing
// allocated service IPs and ports. They must not fail.
type Hooks struct {
	// AfterDelete runs after obj (of r) was removed from the store.
	AfterDelete func(r *Resource, obj runtime.Object)
	// BeforeCreate may reserve resources for obj (allocations); the returned
	// undo runs if the write then fails.
	BeforeCreate func(r *Resource, obj runtime.Object) (undo func(), err error)
	// BeforeUpdate is BeforeCreate for updates.
	BeforeUpdate func(r *Resource, obj, old runtime.Object) (undo func(), commit func(), err error)
}

// Storage implements the Kubernetes verbs over a spec.Store for every
// resource of a Table. Gets and paged lists read the store; unpaged lists
// and watches are served by the Cache. Every error it returns is a
// Kubernetes API error (*apierrors.StatusError).
type Storage struct {
	Store spec.Store
	Table *Table
	Cache *Cache
	Hooks Hooks
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (s *Storage) now() metav1.Time {
	if s.Now != nil {
		return metav1.NewTime(s.Now().Truncate(time.Second))
	}
	return metav1.NewTime(time.Now().Truncate(time.Second))
}

// storeErr maps a store error to an API error by its sentinel (spec's
// errors, matched with errors.Is; never by its text): a value too large is
// 413, other invalid input 400, a missing key 404, and so on; an error
// wrapping no sentinel is a 500.
func storeErr(r *Resource, name string, err error) error {
	var se *apierrors.StatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, spec.ErrNotFound):
		return apierrors.NewNotFound(r.GroupResource(), name)
	case errors.Is(err, spec.ErrAlreadyExists):
		return apierrors.NewAlreadyExists(r.GroupResource(), name)
	case errors.Is(err, spec.ErrConflict):
		return apierrors.NewConflict(r.GroupResource(), name, errors.New(OptimisticLockErrorMsg))
	case errors.Is(err, spec.ErrCompacted):
		return apierrors.NewResourceExpired("The resourceVersion for the provided list is too old.")
	case errors.Is(err, spec.ErrFutureRevision):
		return tooLargeResourceVersion(0, 0)
	case errors.Is(err, spec.ErrValueTooLarge): // before ErrInvalid, which it wraps
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", spec.MaxValueSize))
	case errors.Is(err, spec.ErrInvalid):
		return apierrors.NewBadRequest(err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	return apierrors.NewInternalError(err)
}

// encode returns the stored form of obj: JSON with apiVersion and kind,
// without resourceVersion.
func encode(r *Resource, obj runtime.Object) ([]byte, error) {
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	if sc := r.Stored; sc != nil {
		stored := sc.To(obj)
		stored.GetObjectKind().SetGroupVersionKind(sc.GVK)
		objectMeta(stored).SetResourceVersion("")
		return json.Marshal(stored)
	}
	m := objectMeta(obj)
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	return json.Marshal(obj)
}

func (s *Storage) get(ctx context.Context, r *Resource, ns, name string) (runtime.Object, spec.KeyValue, error) {
	kv, err := s.Store.Get(ctx, r.Key(ns, name))
	if err != nil {
		return nil, kv, storeErr(r, name, err)
	}
	// The watch cache usually holds this very revision already decoded: a
	// deep copy is several times cheaper than decoding the JSON again.
	if cached := s.Cache.decodedAt(r, kv.Key, kv.ModRevision); cached != nil {
		return cached.DeepCopyObject(), kv, nil
	}
	obj, err := decode(r, kv.Value, kv.ModRevision)
	if err != nil {
		return nil, kv, apierrors.NewInternalError(err)
	}
	return obj, kv, nil
}

// Get returns the object namespace/name of r.
func (s *Storage) Get(ctx context.Context, r *Resource, ns, name string) (runtime.Object, error) {
	obj, _, err := s.get(ctx, r, ns, name)
	return obj, err
}

// validateMeta checks metadata and runs the strategy's validation.
func validateMeta(r *Resource, obj runtime.Object) field.ErrorList {
	nameFn := r.Strategy.NameValid
	if nameFn == nil {
		nameFn = apivalidation.NameIsDNSSubdomain
	}
	errs := apivalidation.ValidateObjectMetaAccessor(objectMeta(obj), r.Namespaced, apivalidation.ValidateNameFunc(nameFn), field.NewPath("metadata"))
	if r.Strategy.Validate != nil {
		errs = append(errs, r.Strategy.Validate(obj)...)
	}
	return errs
}

func invalid(r *Resource, obj runtime.Object, errs field.ErrorList) error {
	return apierrors.NewInvalid(r.GroupVersionKind().GroupKind(), objectMeta(obj).GetName(), errs)
}

// CreateOptions qualify a Create.
type CreateOptions struct {
	// DryRun validates and admits without writing.
	DryRun bool
	// Admission is the chain the object passes through (operation CREATE,
	// as the requester in ctx); nil admits it unchecked (the server's own
	// writes).
	Admission admission.Interface
}

// Create stores obj as a new object of r in namespace ns (the request's
// namespace; "" for cluster-scoped). It sets uid, creationTimestamp,
// generation and a generated name, defaults, admits and validates, and
// returns the stored object.
func (s *Storage) Create(ctx context.Context, r *Resource, ns string, obj runtime.Object, opts CreateOptions) (runtime.Object, error) {
	m := objectMeta(obj)
	if r.Namespaced {
		if m.GetNamespace() != "" && m.GetNamespace() != ns {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		m.SetNamespace(ns)
	} else {
		m.SetNamespace("")
	}
	if r.Strategy.Default != nil {
		r.Strategy.Default(obj)
	}
	generated := false
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
		generated = true
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(s.now())
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	if r.NoGeneration {
		m.SetGeneration(0)
	} else {
		m.SetGeneration(1)
	}
	if r.Strategy.PrepareForCreate != nil {
		r.Strategy.PrepareForCreate(obj)
	}
	attrs := attributes(ctx, admission.Create, r, "", obj, nil, opts.DryRun)
	if err := admit(ctx, opts.Admission, attrs); err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		return nil, invalid(r, obj, field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	if errs := validateMeta(r, obj); len(errs) > 0 {
		return nil, invalid(r, obj, errs)
	}
	if err := validate(ctx, opts.Admission, attrs); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return obj, nil
	}
	var undo func()
	if s.Hooks.BeforeCreate != nil {
		u, err := s.Hooks.BeforeCreate(r, obj)
		if err != nil {
			return nil, err
		}
		undo = u
	}
	for attempt := 0; ; attempt++ {
		data, err := encode(r, obj)
		if err != nil {
			if undo != nil {
				undo()
			}
			return nil, apierrors.NewInternalError(err)
		}
		rev, err := s.Store.Create(ctx, r.Key(m.GetNamespace(), m.GetName()), data, spec.CreateOptions{TTL: r.TTL})
		if errors.Is(err, spec.ErrUnsupported) && r.TTL > 0 {
			rev, err = s.Store.Create(ctx, r.Key(m.GetNamespace(), m.GetName()), data, spec.CreateOptions{})
		}
		if errors.Is(err, spec.ErrAlreadyExists) && generated && attempt < 8 {
			m.SetName(m.GetGenerateName() + utilrand.String(5))
			continue
		}
		if err != nil {
			if undo != nil {
				undo()
			}
			return nil, storeErr(r, m.GetName(), err)
		}
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
		return obj, nil
	}
}

// UpdateFunc computes the desired object from the current one. It must not
// modify current; it returns a new object (e.g. the request body, or the
// current object patched).
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// UpdateOptions qualify an Update.
type UpdateOptions struct {
	// Subresource is "" (the main resource), SubStatus, SubScale (whose
	// UpdateFunc returns the parent with its new replicas: it is updated
	// as the main resource is), or another subresource whose UpdateFunc
	// prepares the full object (SubBinding). Admission sees it as the
	// request's subresource.
	Subresource string
	// DryRun validates and admits without writing.
	DryRun bool
	// Admission is the chain the object passes through (operation UPDATE
	// on Subresource, or CREATE when ForceAllowCreate creates it); nil
	// admits it unchecked (the server's own writes).
	Admission admission.Interface
	// ForceAllowCreate lets a missing object be created (PUT on resources
	// with AllowCreateOnUpdate); the UpdateFunc then gets a nil current.
	ForceAllowCreate bool
}

// throughStrategy: the main resource and /scale update through the kind's
// strategy — status kept, PrepareForUpdate, a new generation when the spec
// changes, ValidateUpdate, the allocation hooks — as upstream, where a
// scale update is an update of its parent.
func (o UpdateOptions) throughStrategy() bool {
	return o.Subresource == "" || o.Subresource == SubScale
}

// Update changes the object namespace/name of r: it reads it, calls fn, and
// writes the result with a compare-and-swap on the revision read. If the
// object fn returns carries a resourceVersion, it is a precondition (409
// Conflict when stale); otherwise conflicts are retried. On the main
// resource .status is kept from the current object, on /status everything
// but .status is; metadata.generation grows when .spec changes.
func (s *Storage) Update(ctx context.Context, r *Resource, ns, name string, fn UpdateFunc, opts UpdateOptions) (runtime.Object, bool, error) {
	for attempt := 0; ; attempt++ {
		cur, kv, err := s.get(ctx, r, ns, name)
		if apierrors.IsNotFound(err) && opts.ForceAllowCreate && r.AllowCreateOnUpdate && opts.Subresource == "" {
			obj, err := fn(nil)
			if err != nil {
				return nil, false, err
			}
			if rv := objectMeta(obj).GetResourceVersion(); rv != "" {
				return nil, false, apierrors.NewNotFound(r.GroupResource(), name)
			}
			created, err := s.Create(ctx, r, ns, obj, CreateOptions{DryRun: opts.DryRun, Admission: opts.Admission})
			return created, true, err
		}
		if err != nil {
			return nil, false, err
		}
		desired, err := fn(cur)
		if err != nil {
			return nil, false, err
		}
		dm := objectMeta(desired)
		precondition := dm.GetResourceVersion() != ""
		if precondition && dm.GetResourceVersion() != objectMeta(cur).GetResourceVersion() {
			return nil, false, apierrors.NewConflict(r.GroupResource(), name, errors.New(OptimisticLockErrorMsg))
		}
		obj, err := s.prepareUpdate(ctx, r, ns, name, cur, desired, opts)
		if err != nil {
			return nil, false, err
		}
		// A no-op writes nothing, as upstream: like its storage, compare
		// what would be stored with what is (cheaper than a deep
		// comparison of the objects).
		data, err := encode(r, obj)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		if bytes.Equal(data, kv.Value) {
			return cur, false, nil
		}
		if opts.DryRun {
			return obj, false, nil
		}
		m := objectMeta(obj)
		if m.GetDeletionTimestamp() != nil && !finalizersPending(obj) && (m.GetDeletionGracePeriodSeconds() == nil || *m.GetDeletionGracePeriodSeconds() == 0) {
			// The last finalizer of an object being deleted is gone (for a
			// namespace, spec.finalizers too).
			_, rev, err := s.Store.Delete(ctx, kv.Key, kv.ModRevision)
			if errors.Is(err, spec.ErrConflict) && !precondition && attempt < 16 {
				continue
			}
			if err != nil {
				return nil, false, storeErr(r, name, err)
			}
			if s.Hooks.AfterDelete != nil {
				s.Hooks.AfterDelete(r, obj)
			}
			m.SetResourceVersion(strconv.FormatInt(rev, 10))
			return obj, false, nil
		}
		var undo, commit func()
		if s.Hooks.BeforeUpdate != nil && opts.throughStrategy() {
			undo, commit, err = s.Hooks.BeforeUpdate(r, obj, cur)
			if err != nil {
				return nil, false, err
			}
			// The hook may have set allocated fields.
			if data, err = encode(r, obj); err != nil {
				if undo != nil {
					undo()
				}
				return nil, false, apierrors.NewInternalError(err)
			}
		}
		rev, err := s.Store.Update(ctx, kv.Key, data, kv.ModRevision)
		if err != nil && undo != nil {
			undo()
		}
		if errors.Is(err, spec.ErrConflict) && !precondition && attempt < 16 {
			continue
		}
		if err != nil {
			return nil, false, storeErr(r, name, err)
		}
		if commit != nil {
			commit()
		}
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
		return obj, false, nil
	}
}

// prepareUpdate merges desired onto cur as the subresource dictates,
// defaults, admits and validates.
func (s *Storage) prepareUpdate(ctx context.Context, r *Resource, ns, name string, cur, desired runtime.Object, opts UpdateOptions) (runtime.Object, error) {
	dm := objectMeta(desired)
	if dm.GetName() != name {
		if dm.GetName() == "" {
			dm.SetName(name)
		} else {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", dm.GetName(), name))
		}
	}
	if r.Namespaced {
		if dm.GetNamespace() != "" && dm.GetNamespace() != ns {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		dm.SetNamespace(ns)
	} else {
		dm.SetNamespace("")
	}
	var obj runtime.Object
	statusSplit := hasField(cur, "Status") && r.HasSubresource(SubStatus)
	switch {
	case opts.Subresource == SubStatus:
		// Everything but status (and metadata's labels/annotations) comes
		// from the current object.
		obj = cur.DeepCopyObject()
		copyField(obj, desired, "Status")
		om := objectMeta(obj)
		om.SetLabels(dm.GetLabels())
		om.SetAnnotations(dm.GetAnnotations())
		om.SetManagedFields(dm.GetManagedFields()) // the API server's field manager tracks status writers too
	case opts.Subresource == SubFinalize:
		// Only spec.finalizers (a namespace's whole spec) comes from the
		// request.
		obj = cur.DeepCopyObject()
		copyField(obj, desired, "Spec")
	default:
		obj = desired
		if statusSplit && opts.throughStrategy() {
			copyField(obj, cur, "Status")
		}
		if r.Strategy.Default != nil {
			r.Strategy.Default(obj)
		}
	}
	m, cm := objectMeta(obj), objectMeta(cur)
	// System-owned metadata is kept from the current object.
	m.SetUID(cm.GetUID())
	m.SetCreationTimestamp(cm.GetCreationTimestamp())
	m.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	m.SetGeneration(cm.GetGeneration())
	m.SetResourceVersion(cm.GetResourceVersion())
	m.SetSelfLink("")
	if m.GetGenerateName() == "" {
		m.SetGenerateName(cm.GetGenerateName())
	}
	if opts.throughStrategy() {
		if r.Strategy.PrepareForUpdate != nil {
			r.Strategy.PrepareForUpdate(obj, cur)
		}
		if !r.NoGeneration && hasField(obj, "Spec") && !semanticEqual(fieldValue(obj, "Spec"), fieldValue(cur, "Spec")) {
			m.SetGeneration(cm.GetGeneration() + 1)
		}
	}
	attrs := attributes(ctx, admission.Update, r, opts.Subresource, obj, cur, opts.DryRun)
	if err := admit(ctx, opts.Admission, attrs); err != nil {
		return nil, err
	}
	errs := apivalidation.ValidateObjectMetaAccessorUpdate(m, cm, field.NewPath("metadata"))
	errs = append(errs, validateMeta(r, obj)...)
	if r.Strategy.ValidateUpdate != nil && opts.throughStrategy() {
		errs = append(errs, r.Strategy.ValidateUpdate(obj, cur)...)
	}
	if ns, ok := obj.(*corev1.Namespace); ok && opts.Subresource == SubFinalize {
		for i, f := range ns.Spec.Finalizers {
			errs = append(errs, apivalidation.ValidateFinalizerName(string(f), field.NewPath("spec", "finalizers").Index(i))...)
		}
	}
	if cm.GetDeletionTimestamp() != nil {
		errs = append(errs, apivalidation.ValidateNoNewFinalizers(m.GetFinalizers(), cm.GetFinalizers(), field.NewPath("metadata", "finalizers"))...)
	}
	if len(errs) > 0 {
		return nil, invalid(r, obj, errs)
	}
	if err := validate(ctx, opts.Admission, attrs); err != nil {
		return nil, err
	}
	return obj, nil
}

// ListOptions qualify a List.
type ListOptions struct {
	Filter Filter
	// ResourceVersion and ResourceVersionMatch as in metav1.ListOptions.
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	// Limit and Continue page the list.
	Limit    int64
	Continue string
}

// continueToken is the decoded form of a continue token: the last key
// returned (relative to the list prefix) and the revision of the list.
type continueToken struct {
	APIVersion string `json:"v"`
	Revision   int64  `json:"rv"`
	Start      string `json:"start"`
}

// EncodeContinue returns the opaque continue token for a list of prefix read
// at rev whose last item was lastKey.
func EncodeContinue(prefix, lastKey string, rev int64) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", Revision: rev, Start: strings.TrimPrefix(lastKey, prefix+"/")})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeContinue parses a continue token for prefix, returning the key to
// list after and the revision. A malformed token is a 400 BadRequest.
func DecodeContinue(prefix, token string) (string, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", 0, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return "", 0, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
	}
	if t.APIVersion != "meta.k8s.io/v1" || t.Revision <= 0 || t.Start == "" || strings.Contains(t.Start, "..") {
		return "", 0, apierrors.NewBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	return prefix + "/" + t.Start, t.Revision, nil
}

// expiredContinue is upstream's 410 for a continue token whose revision
// was compacted.
func expiredContinue() error {
	return apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
}

// ValidateListOptions checks the resourceVersion/continue combinations
// upstream rejects (422 Invalid, kind ListOptions).
func ValidateListOptions(o ListOptions, watch bool) error {
	var errs field.ErrorList
	if o.Continue != "" && o.ResourceVersion != "" && o.ResourceVersion != "0" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersion"), "specifying resource version is not allowed when using continue"))
	}
	if o.ResourceVersion != "" {
		if _, err := strconv.ParseUint(o.ResourceVersion, 10, 64); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %q", o.ResourceVersion))
		}
	}
	switch o.ResourceVersionMatch {
	case "":
	case metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
		if o.ResourceVersion == "" && !watch {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden unless resourceVersion is provided"))
		}
		if o.Continue != "" {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
		}
		if o.ResourceVersionMatch == metav1.ResourceVersionMatchExact && o.ResourceVersion == "0" {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
		}
		if watch && o.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		}
	default:
		errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), o.ResourceVersionMatch, []string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan), ""}))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", errs)
	}
	return nil
}

// List returns a list object (r's list type) of the selected objects.
// Unpaged lists come from the cache (after WaitFresh for anything but
// resourceVersion="0"); paged lists, continuations and Exact reads come from
// the store at one revision, with continue tokens naming the last key and
// that revision.
func (s *Storage) List(ctx context.Context, r *Resource, o ListOptions) (runtime.Object, error) {
	if err := ValidateListOptions(o, false); err != nil {
		return nil, err
	}
	var rv int64
	if o.ResourceVersion != "" {
		rv, _ = strconv.ParseInt(o.ResourceVersion, 10, 64)
	}
	fromStore := o.Continue != "" || o.ResourceVersionMatch == metav1.ResourceVersionMatchExact ||
		(o.Limit > 0 && o.ResourceVersion != "0" && (o.ResourceVersion == "" || o.ResourceVersionMatch == ""))
	list := r.NewList()
	list.GetObjectKind().SetGroupVersionKind(r.GroupVersion().WithKind(r.Kind + "List"))
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if !fromStore {
		if o.ResourceVersion != "0" {
			if err := s.Cache.WaitFresh(ctx, rv); err != nil {
				return nil, err
			}
		}
		items, rev := s.Cache.List(r, o.Filter)
		if err := setItems(list, items); err != nil {
			return nil, err
		}
		lm.SetResourceVersion(strconv.FormatInt(rev, 10))
		return list, nil
	}
	prefix := r.NamespacePrefix(o.Filter.Namespace)
	after := ""
	if o.Continue != "" {
		var err error
		after, rv, err = DecodeContinue(prefix, o.Continue)
		if err != nil {
			return nil, err
		}
	}
	var items []runtime.Object
	var lastKey string
	more := false
	for {
		page := o.Limit - int64(len(items))
		if o.Limit == 0 {
			page = 0
		} else if page < 100 {
			page = 100 // read ahead: selectors may drop items
		}
		res, err := s.Store.List(ctx, prefix, spec.ListOptions{Revision: rv, Limit: page, After: after})
		if err != nil {
			if errors.Is(err, spec.ErrCompacted) && o.Continue != "" {
				return nil, expiredContinue()
			}
			return nil, storeErr(r, "", err)
		}
		rv = res.Revision
		for i, kv := range res.Items {
			obj, err := decode(r, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			lastKey = kv.Key
			if o.Filter.matches(r, s.Cache.newCached(r, kv.Key, obj)) {
				items = append(items, obj)
			}
			if o.Limit > 0 && int64(len(items)) == o.Limit {
				more = i < len(res.Items)-1 || res.More
				break
			}
		}
		if (o.Limit > 0 && int64(len(items)) == o.Limit) || !res.More || len(res.Items) == 0 {
			break
		}
		after = res.Items[len(res.Items)-1].Key
	}
	if err := setItems(list, items); err != nil {
		return nil, err
	}
	lm.SetResourceVersion(strconv.FormatInt(rv, 10))
	if more {
		lm.SetContinue(EncodeContinue(prefix, lastKey, rv))
	}
	return list, nil
}

func setItems(list runtime.Object, items []runtime.Object) error {
	if items == nil {
		items = []runtime.Object{}
	}
	if err := meta.SetList(list, items); err != nil {
		return apierrors.NewInternalError(err)
	}
	return nil
}

// DeleteCollection deletes every object of r selected by o (from a
// consistent read of the cache) and returns the list of what was deleted or
// marked for deletion.
func (s *Storage) DeleteCollection(ctx context.Context, r *Resource, o ListOptions, opts DeleteOptions) (runtime.Object, error) {
	o.Limit, o.Continue = 0, ""
	listObj, err := s.List(ctx, r, o)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(listObj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var deleted []runtime.Object
	for _, it := range items {
		m := objectMeta(it)
		obj, _, err := s.Delete(ctx, r, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		deleted = append(deleted, obj)
	}
	if err := setItems(listObj, deleted); err != nil {
		return nil, err
	}
	return listObj, nil
}
