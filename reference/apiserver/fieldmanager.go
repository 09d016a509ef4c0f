package apiserver

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/structured-merge-diff/v6/value"
	"sigs.k8s.io/yaml"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// Server-side apply and managedFields, with apimachinery's field manager
// over a type converter built from the generated OpenAPI schemas (see
// openapi.go), as upstream:
//
//   - create, update (PUT) and every non-apply patch record the fields the
//     request set as an Update operation of its manager — the fieldManager
//     parameter, or else the user agent up to its first "/" ("kubectl");
//   - an apply patch (application/apply-patch+yaml) merges the applied
//     configuration into the live object (or a new one) structurally, as
//     an Apply operation of fieldManager (required), and fails with 409 when
//     it changes a field another manager owns, unless force=true; fields
//     the manager applied before and no longer applies are removed when
//     nobody else owns them;
//   - the main resource and /status track their fields separately
//     (managedFields entries with subresource "status"), each ignoring the
//     other's part of the object;
//   - /scale writes are tracked on the Scale (entries with subresource
//     "scale" owning .spec.replicas), converted from and back to the parent's
//     entries by apimachinery's ScaleHandler.

// defaulter adapts a strategy's defaulting to runtime.ObjectDefaulter.
type defaulter func(runtime.Object)

func (d defaulter) Default(obj runtime.Object) {
	if d != nil {
		d(obj)
	}
}

// fieldManager returns the field manager of res (sub "" or "status"),
// created on first use.
func (s *Server) fieldManager(res *registry.Resource, sub string) (*managedfields.FieldManager, error) {
	gvk := res.GroupVersionKind()
	// Each side ignores what the other side owns.
	var reset map[fieldpath.APIVersion]fieldpath.Filter
	if res.HasSubresource(registry.SubStatus) {
		ignored := fieldpath.MakePathOrDie("status")
		if sub == registry.SubStatus {
			ignored = fieldpath.MakePathOrDie("spec")
		}
		reset = map[fieldpath.APIVersion]fieldpath.Filter{
			fieldpath.APIVersion(gvk.GroupVersion().String()): fieldpath.NewExcludeSetFilter(fieldpath.NewSet(ignored)),
		}
	}
	var def defaulter
	if res.Strategy.Default != nil {
		def = res.Strategy.Default
	}
	return s.fieldManagerOf(gvk, sub, reset, def)
}

// scaleFieldManager is the field manager of autoscaling/v1 Scale objects
// of the scale subresource.
func (s *Server) scaleFieldManager() (*managedfields.FieldManager, error) {
	return s.fieldManagerOf(autoscalingv1.SchemeGroupVersion.WithKind("Scale"), registry.SubScale, nil, nil)
}

func (s *Server) fieldManagerOf(gvk schema.GroupVersionKind, sub string, reset map[fieldpath.APIVersion]fieldpath.Filter, def defaulter) (*managedfields.FieldManager, error) {
	key := gvk.String() + "/" + sub
	if fm, ok := s.oapi.managers.Load(key); ok {
		return fm.(*managedfields.FieldManager), nil
	}
	o := s.openAPIDefinitions()
	if o.tcErr != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("server-side apply type converter: %w", o.tcErr))
	}
	// As upstream's handlers, the field manager converts with the scheme's
	// unsafe convertor: an object already at the manager's version is used
	// as is, not deep-copied (twice per write).
	fm, err := managedfields.NewDefaultFieldManager(s.typeConverter(o.tc), runtime.UnsafeObjectConvertor(scheme.Scheme), def, scheme.Scheme, gvk, gvk.GroupVersion(), sub, reset)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	actual, _ := s.oapi.managers.LoadOrStore(key, fm)
	return actual.(*managedfields.FieldManager), nil
}

// structuredConverter is the server's type converter with a cheaper
// conversion of Go structs: their value is typed against the schema
// without a validation walk. A typed object (always of the kind its schema
// was generated from) cannot fail what that walk checks — types, list and
// map shapes — and the field manager's comparison, which walks the same
// value with the same schema next, still reports any mismatch. Unstructured
// objects (apply configurations) are validated as before: that is what
// rejects a configuration that does not fit the schema.
type structuredConverter struct {
	managedfields.TypeConverter
	types sync.Map // schema.GroupVersionKind → structuredType
}

// structuredType is the schema and type of one kind.
type structuredType struct {
	schema  *smdschema.Schema
	typeRef smdschema.TypeRef
}

// typeConverter returns the structuredConverter over tc, one per server.
func (s *Server) typeConverter(tc managedfields.TypeConverter) managedfields.TypeConverter {
	s.oapi.convOnce.Do(func() { s.oapi.conv = &structuredConverter{TypeConverter: tc} })
	return s.oapi.conv
}

// ObjectToTyped implements managedfields.TypeConverter.
func (c *structuredConverter) ObjectToTyped(obj runtime.Object, opts ...typed.ValidationOptions) (*typed.TypedValue, error) {
	if _, ok := obj.(runtime.Unstructured); ok {
		return c.TypeConverter.ObjectToTyped(obj, opts...)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if t, ok := c.types.Load(gvk); ok {
		v, err := value.NewValueReflect(obj)
		if err != nil {
			return nil, fmt.Errorf("error creating struct value reflector: %w", err)
		}
		st := t.(structuredType)
		return typed.AsTypedUnvalidated(v, st.schema, st.typeRef), nil
	}
	// The first object of a kind goes the validated way, which also finds
	// the kind's schema.
	tv, err := c.TypeConverter.ObjectToTyped(obj, opts...)
	if err == nil {
		c.types.Store(gvk, structuredType{schema: tv.Schema(), typeRef: tv.TypeRef()})
	}
	return tv, err
}

// managerName is the manager of a non-apply write: the fieldManager
// parameter, or the user agent's prefix up to the first "/", printable
// characters only, at most 128 bytes (upstream's default).
func managerName(req *http.Request) string {
	if m := req.URL.Query().Get("fieldManager"); m != "" {
		return m
	}
	prefix, _, _ := strings.Cut(req.UserAgent(), "/")
	var buf bytes.Buffer
	for _, r := range prefix {
		if !unicode.IsPrint(r) {
			continue
		}
		if buf.Len()+utf8.RuneLen(r) > metav1validation.FieldManagerMaxLength {
			break
		}
		buf.WriteRune(r)
	}
	return buf.String()
}

// validateManagerParams checks fieldManager (and, for patches, force) as
// upstream does: 422 with the options kind, e.g. "PatchOptions.meta.k8s.io
// \"\" is invalid: fieldManager: Required value: is required for apply
// patch".
func validateManagerParams(req *http.Request, verb string, patchType types.PatchType) error {
	q := req.URL.Query()
	var errs field.ErrorList
	kind := "CreateOptions"
	switch verb {
	case "patch":
		kind = "PatchOptions"
		opts := &metav1.PatchOptions{FieldManager: q.Get("fieldManager")}
		if v, ok := q["force"]; ok && len(v) > 0 {
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return apierrors.NewBadRequest(fmt.Sprintf("invalid force %q: %v", v[0], err))
			}
			opts.Force = &b
		}
		errs = metav1validation.ValidatePatchOptions(opts, patchType)
	default:
		if verb == "update" {
			kind = "UpdateOptions"
		}
		errs = metav1validation.ValidateFieldManager(q.Get("fieldManager"), field.NewPath("fieldManager"))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
	}
	return nil
}

// trackUpdate records obj's changes over live (nil: a create) as an Update
// of the request's manager in obj's managedFields.
func (s *Server) trackUpdate(req *http.Request, res *registry.Resource, sub string, live, obj runtime.Object) (runtime.Object, error) {
	fm, err := s.fieldManager(res, sub)
	if err != nil {
		return nil, err
	}
	if live == nil {
		live = res.New()
	}
	return fm.UpdateNoErrors(live, obj, managerName(req)), nil
}

// applyConfiguration decodes an apply patch (YAML or JSON) into the
// object it configures.
func applyConfiguration(patch []byte, validation string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	if err := yaml.Unmarshal(patch, &u.Object); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
	}
	if validation == fieldValidationStrict {
		if err := yaml.UnmarshalStrict(patch, &map[string]any{}); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding patch: %v", err))
		}
	}
	return u, nil
}

// apply merges the applied configuration into live (a new object when
// nil) as fieldManager, force taking over conflicting fields.
func (s *Server) apply(req *http.Request, res *registry.Resource, sub string, live runtime.Object, applied *unstructured.Unstructured) (runtime.Object, error) {
	fm, err := s.fieldManager(res, sub)
	if err != nil {
		return nil, err
	}
	if live == nil {
		live = res.New()
	}
	force, _ := strconv.ParseBool(req.URL.Query().Get("force"))
	obj, err := fm.Apply(live, applied.DeepCopy(), req.URL.Query().Get("fieldManager"), force)
	if err != nil {
		if _, ok := err.(apierrors.APIStatus); ok {
			return nil, err
		}
		// The configuration does not fit the schema (an unknown field, a
		// wrong type, a duplicate list key): the request is bad.
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return obj, nil
}

// replicasPaths maps each group/version with a scale subresource to the
// path of its replicas field.
var replicasPaths = managedfields.ResourcePathMappings{
	"apps/v1": fieldpath.MakePathOrDie("spec", "replicas"),
}

// trackScale records a /scale write (want over cur, both carrying the
// scale's view of the parent's managedFields) and returns want with its
// managedFields updated. An apply patch goes through the field manager's
// Apply.
func (s *Server) trackScale(req *http.Request, cur, want *autoscalingv1.Scale, applied *unstructured.Unstructured) (*autoscalingv1.Scale, error) {
	fm, err := s.scaleFieldManager()
	if err != nil {
		return nil, err
	}
	var obj runtime.Object
	if applied != nil {
		force, _ := strconv.ParseBool(req.URL.Query().Get("force"))
		if obj, err = fm.Apply(cur, applied.DeepCopy(), req.URL.Query().Get("fieldManager"), force); err != nil {
			if _, ok := err.(apierrors.APIStatus); ok {
				return nil, err
			}
			return nil, apierrors.NewBadRequest(err.Error())
		}
	} else {
		obj = fm.UpdateNoErrors(cur, want, managerName(req))
	}
	sc, ok := obj.(*autoscalingv1.Scale)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("field manager returned %T for a Scale", obj))
	}
	return sc, nil
}
