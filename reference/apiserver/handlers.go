package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// notFound is upstream's 404 for a path it does not serve.
func notFound() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "", "", 0, false)
}

func methodNotAllowed(r *registry.Resource, verb string) error {
	return apierrors.NewMethodNotSupported(r.GroupResource(), verb)
}

// route dispatches a request to discovery, probes or a resource handler.
func (s *Server) route(w http.ResponseWriter, req *http.Request) {
	info, ok := request.RequestInfoFrom(req.Context())
	if !ok || !info.IsResourceRequest {
		s.serveNonResource(w, req)
		return
	}
	if s.serveReview(w, req, info) {
		return
	}
	res := s.table.Lookup(info.APIGroup, info.APIVersion, info.Resource)
	if res == nil {
		writeError(w, notFound())
		return
	}
	ns := info.Namespace
	if !res.Namespaced {
		if ns != "" && !(res.Name == "namespaces" && res.Group == "") {
			writeError(w, notFound())
			return
		}
		ns = ""
	} else if ns == "" && info.Name != "" {
		writeError(w, notFound())
		return
	} else if ns == "" && info.Verb == "create" {
		writeError(w, notFound())
		return
	}
	if info.Subresource != "" && !res.HasSubresource(info.Subresource) {
		writeError(w, notFound())
		return
	}
	ctx := req.Context()
	var err error
	switch info.Subresource {
	case "":
		err = s.serveResource(ctx, w, req, info, res, ns)
	case registry.SubStatus:
		err = s.serveStatus(ctx, w, req, info, res, ns)
	case registry.SubScale:
		err = s.serveScale(ctx, w, req, info, res, ns)
	case registry.SubBinding:
		err = s.serveBinding(ctx, w, req, info, res, ns)
	case registry.SubEviction:
		err = s.serveEviction(ctx, w, req, info, res, ns)
	case registry.SubToken:
		err = s.serveTokenRequest(ctx, w, req, info, res, ns)
	case registry.SubLog:
		err = s.serveLog(ctx, w, req, info, res, ns)
	case registry.SubExec, registry.SubAttach, registry.SubPortForward:
		err = s.serveStream(ctx, w, req, info, res, ns)
	case registry.SubProxy:
		err = s.serveNodeProxy(ctx, w, req, info)
	case registry.SubFinalize:
		// namespaces/finalize: PUT only, as upstream.
		if info.Verb != "update" {
			err = methodNotAllowed(res, info.Verb)
			break
		}
		err = s.serveUpdate(ctx, w, req, info, res, ns, registry.SubFinalize)
	default:
		err = notFound()
	}
	if err != nil {
		writeError(w, err)
	}
}

func (s *Server) serveResource(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	switch info.Verb {
	case "get":
		out, err := negotiate(req)
		if err != nil {
			return err
		}
		obj, err := s.storage.Get(ctx, res, ns, info.Name)
		if err != nil {
			return err
		}
		return s.writeResult(w, req, res, out, http.StatusOK, obj)
	case "list":
		return s.serveList(ctx, w, req, res, ns)
	case "watch":
		return s.serveWatch(ctx, w, req, res, ns, info.Name)
	case "create":
		if info.Name != "" {
			// POST names a collection, never an object: upstream's router
			// has no such route for a resource without a subresource.
			return statusError(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "the server does not allow this method on the requested resource")
		}
		return s.serveCreate(ctx, w, req, res, ns)
	case "update":
		return s.serveUpdate(ctx, w, req, info, res, ns, "")
	case "patch":
		return s.servePatch(ctx, w, req, info, res, ns, "")
	case "delete":
		return s.serveDelete(ctx, w, req, res, ns, info.Name)
	case "deletecollection":
		return s.serveDeleteCollection(ctx, w, req, res, ns)
	}
	return methodNotAllowed(res, info.Verb)
}

// writeResult writes obj (or its table / metadata form) with code.
func (s *Server) writeResult(w http.ResponseWriter, req *http.Request, res *registry.Resource, out output, code int, obj runtime.Object) error {
	switch out {
	case outputTable:
		t, err := s.toTable(req, res, obj)
		if err != nil {
			return err
		}
		writeJSON(w, code, t)
	case outputPartial:
		writeJSON(w, code, toPartial(obj))
	default:
		writeJSON(w, code, obj)
	}
	return nil
}

// dryRun parses the dryRun parameter: "All" or nothing; anything else is
// upstream's 422 Invalid on the request's options.
func dryRun(req *http.Request) (bool, error) {
	vals := req.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != metav1.DryRunAll {
			return false, invalidOptions(req, field.NotSupported(field.NewPath("dryRun"), vals, []string{metav1.DryRunAll}))
		}
	}
	return len(vals) > 0, nil
}

// writeParams reads what every write request (create, update, patch) says
// besides its body: the response format, the fieldValidation level and
// whether it is a dry run.
func writeParams(req *http.Request) (out output, validation string, dry bool, err error) {
	if out, err = negotiate(req); err != nil {
		return out, "", false, err
	}
	if validation, err = fieldValidation(req); err != nil {
		return out, "", false, err
	}
	dry, err = dryRun(req)
	return out, validation, dry, err
}

func (s *Server) serveCreate(ctx context.Context, w http.ResponseWriter, req *http.Request, res *registry.Resource, ns string) error {
	out, validation, dry, err := writeParams(req)
	if err != nil {
		return err
	}
	if err := validateManagerParams(req, "create", ""); err != nil {
		return err
	}
	obj, warnings, err := decodeBody(req, res, validation)
	if err != nil {
		return err
	}
	if obj, err = s.trackUpdate(req, res, "", nil, obj); err != nil {
		return err
	}
	created, err := s.storage.Create(ctx, res, ns, obj, registry.CreateOptions{DryRun: dry, Admission: s.admission})
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	return s.writeResult(w, req, res, out, http.StatusCreated, created)
}

func (s *Server) serveUpdate(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns, sub string) error {
	out, validation, dry, err := writeParams(req)
	if err != nil {
		return err
	}
	if err := validateManagerParams(req, "update", ""); err != nil {
		return err
	}
	obj, warnings, err := decodeBody(req, res, validation)
	if err != nil {
		return err
	}
	updated, created, err := s.storage.Update(ctx, res, ns, info.Name, func(cur runtime.Object) (runtime.Object, error) {
		return s.trackUpdate(req, res, sub, cur, obj.DeepCopyObject())
	}, registry.UpdateOptions{Subresource: sub, DryRun: dry, Admission: s.admission, ForceAllowCreate: sub == ""})
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.writeResult(w, req, res, out, code, updated)
}

// applyPatch applies a patch of the given content type to the JSON of cur
// (an object of type like).
func applyPatch(contentType string, current, patch []byte, like runtime.Object) ([]byte, error) {
	switch contentType {
	case string(types.JSONPatchType):
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		out, err := p.Apply(current)
		if err != nil {
			return nil, statusError(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
		}
		return out, nil
	case string(types.MergePatchType):
		out, err := jsonpatch.MergePatch(current, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	case string(types.StrategicMergePatchType), string(types.ApplyYAMLPatchType), string(types.ApplyCBORPatchType):
		out, err := strategicpatch.StrategicMergePatch(current, patch, like)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	}
	return nil, statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s, %s",
			types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType))
}

// invalidPatchResult is upstream's error for a patch whose result does not
// decode (a wrong type, kind or apiVersion, or, with Strict, an unknown
// field): 422 Invalid on the field "patch", whatever the decoder said.
func invalidPatchResult(patched []byte, err error) error {
	msg := err.Error()
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		msg = st.Status().Message
	}
	return apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{field.Invalid(field.NewPath("patch"), string(patched), msg)})
}

func (s *Server) servePatch(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns, sub string) error {
	out, validation, dry, err := writeParams(req)
	if err != nil {
		return err
	}
	patch, err := readBody(req)
	if err != nil {
		return err
	}
	ct := req.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if _, err := applyPatch(ct, []byte("{}"), []byte("{}"), res.New()); err != nil && apierrors.IsUnsupportedMediaType(err) {
		return err
	}
	if err := validateManagerParams(req, "patch", types.PatchType(ct)); err != nil {
		return err
	}
	if ct == string(types.ApplyYAMLPatchType) {
		return s.serveApply(ctx, w, req, info, res, ns, sub, patch, out, validation, dry)
	}
	if ct == string(types.ApplyCBORPatchType) {
		return statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s, %s",
				types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType))
	}
	setsRV := strings.Contains(string(patch), `"resourceVersion"`)
	var warnings []string
	fn := func(cur runtime.Object) (runtime.Object, error) {
		curJSON, err := json.Marshal(cur)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		patched, err := applyPatch(ct, curJSON, patch, res.New())
		if err != nil {
			return nil, err
		}
		obj := res.New()
		warnings, err = decodeInto(patched, res.GroupVersionKind(), obj, validation)
		if err != nil {
			return nil, invalidPatchResult(patched, err)
		}
		if !setsRV {
			objectMetaOf(obj).SetResourceVersion("") // retry on conflicts
		}
		return s.trackUpdate(req, res, sub, cur, obj)
	}
	updated, _, err := s.storage.Update(ctx, res, ns, info.Name, fn, registry.UpdateOptions{Subresource: sub, DryRun: dry, Admission: s.admission})
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	return s.writeResult(w, req, res, out, http.StatusOK, updated)
}

// serveApply serves a server-side apply patch: the applied configuration
// is merged into the live object by the field manager (see
// fieldmanager.go), or, when there is none, into a new object that is
// created (201).
func (s *Server) serveApply(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns, sub string, patch []byte, out output, validation string, dry bool) error {
	applied, err := applyConfiguration(patch, validation)
	if err != nil {
		return err
	}
	if n := applied.GetName(); n != "" && n != info.Name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", n, info.Name))
	}
	rv := applied.GetResourceVersion()
	updated, _, err := s.storage.Update(ctx, res, ns, info.Name, func(cur runtime.Object) (runtime.Object, error) {
		obj, err := s.apply(req, res, sub, cur, applied)
		if err != nil {
			return nil, err
		}
		objectMetaOf(obj).SetResourceVersion(rv) // a precondition only if the configuration has one
		return obj, nil
	}, registry.UpdateOptions{Subresource: sub, DryRun: dry, Admission: s.admission})
	if sub == "" && apierrors.IsNotFound(err) {
		obj, err := s.apply(req, res, sub, nil, applied)
		if err != nil {
			return err
		}
		m := objectMetaOf(obj)
		if m.GetName() == "" {
			m.SetName(info.Name)
		}
		if m.GetResourceVersion() != "" {
			return apierrors.NewNotFound(res.GroupResource(), info.Name)
		}
		created, err := s.storage.Create(ctx, res, ns, obj, registry.CreateOptions{DryRun: dry, Admission: s.admission})
		if err != nil {
			return err
		}
		return s.writeResult(w, req, res, out, http.StatusCreated, created)
	}
	if err != nil {
		return err
	}
	return s.writeResult(w, req, res, out, http.StatusOK, updated)
}

// deleteOptions reads DeleteOptions from the body or the query.
func deleteOptions(req *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	data, err := readBody(req)
	if err != nil {
		return opts, err
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		if mt := strings.TrimSpace(strings.Split(req.Header.Get("Content-Type"), ";")[0]); mt == contentTypeProtobuf {
			info, _ := request.RequestInfoFrom(req.Context())
			gvk := schema.GroupVersionKind{Group: info.APIGroup, Version: info.APIVersion, Kind: "DeleteOptions"}
			if _, err := decodeObject(req, data, gvk, &opts, fieldValidationIgnore); err != nil {
				return opts, err
			}
		} else if err := json.Unmarshal(data, &opts); err != nil {
			// kubectl sends apiVersion "v1" or "meta.k8s.io/v1": both are fine.
			return opts, apierrors.NewBadRequest(fmt.Sprintf("error decoding DeleteOptions: %v", err))
		}
	}
	q := req.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" && opts.PropagationPolicy == nil {
		p := metav1.DeletePropagationBackground
		if v == "true" {
			p = metav1.DeletePropagationOrphan
		}
		opts.PropagationPolicy = &p
	}
	if opts.OrphanDependents != nil && opts.PropagationPolicy == nil {
		p := metav1.DeletePropagationBackground
		if *opts.OrphanDependents {
			p = metav1.DeletePropagationOrphan
		}
		opts.PropagationPolicy = &p
	}
	if dry, err := dryRun(req); err != nil {
		return opts, err
	} else if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return opts, nil
}

func (s *Server) serveDelete(ctx context.Context, w http.ResponseWriter, req *http.Request, res *registry.Resource, ns, name string) error {
	out, err := negotiate(req)
	if err != nil {
		return err
	}
	opts, err := deleteOptions(req)
	if err != nil {
		return err
	}
	obj, deleted, err := s.storage.Delete(ctx, res, ns, name, registry.DeleteOptions{DeleteOptions: opts, Admission: s.admission})
	if err != nil {
		return err
	}
	// As upstream: 202 only when a cascading delete (orphanDependents=false)
	// is pending; a kind that does not return its deleted object answers an
	// immediate delete with a Status naming it (Kind is the resource).
	code := http.StatusOK
	if !deleted && opts.OrphanDependents != nil && !*opts.OrphanDependents {
		code = http.StatusAccepted
	}
	if deleted && !res.ReturnDeletedObject {
		st := successStatus(0, res, name)
		if m, err := metaAccessor(obj); err == nil {
			st.Details.UID = m.GetUID()
		}
		writeJSON(w, code, st)
		return nil
	}
	return s.writeResult(w, req, res, out, code, obj)
}

// listOptions parses the list/watch query parameters.
func listOptions(req *http.Request, res *registry.Resource, ns string) (registry.ListOptions, error) {
	q := req.URL.Query()
	o := registry.ListOptions{
		Filter:               registry.Filter{Namespace: ns},
		ResourceVersion:      q.Get("resourceVersion"),
		ResourceVersionMatch: metav1.ResourceVersionMatch(q.Get("resourceVersionMatch")),
		Continue:             q.Get("continue"),
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return o, apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q", v))
		}
		o.Limit = max(n, 0) // a negative limit is no limit, as upstream
	}
	if v := q.Get("labelSelector"); v != "" {
		sel, err := labels.Parse(v)
		if err != nil {
			return o, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		o.Filter.Label = sel
	}
	if v := q.Get("fieldSelector"); v != "" {
		sel, err := fields.ParseSelector(v)
		if err != nil {
			return o, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		supported := registry.SupportedFields(res)
		for _, r := range sel.Requirements() {
			if !supported[r.Field] {
				return o, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
		o.Filter.Field = sel
	}
	return o, nil
}

func (s *Server) serveList(ctx context.Context, w http.ResponseWriter, req *http.Request, res *registry.Resource, ns string) error {
	q := req.URL.Query().Get("watch")
	if q == "true" || q == "1" {
		return s.serveWatch(ctx, w, req, res, ns, "")
	}
	out, err := negotiate(req)
	if err != nil {
		return err
	}
	o, err := listOptions(req, res, ns)
	if err != nil {
		return err
	}
	list, err := s.storage.List(ctx, res, o)
	if err != nil {
		return err
	}
	return s.writeResult(w, req, res, out, http.StatusOK, list)
}

func (s *Server) serveDeleteCollection(ctx context.Context, w http.ResponseWriter, req *http.Request, res *registry.Resource, ns string) error {
	o, err := listOptions(req, res, ns)
	if err != nil {
		return err
	}
	opts, err := deleteOptions(req)
	if err != nil {
		return err
	}
	list, err := s.storage.DeleteCollection(ctx, res, o, registry.DeleteOptions{DeleteOptions: opts, Admission: s.admission})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) serveStatus(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	switch info.Verb {
	case "get":
		obj, err := s.storage.Get(ctx, res, ns, info.Name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, obj)
		return nil
	case "update":
		return s.serveUpdate(ctx, w, req, info, res, ns, registry.SubStatus)
	case "patch":
		return s.servePatch(ctx, w, req, info, res, ns, registry.SubStatus)
	}
	return methodNotAllowed(res, info.Verb)
}

// scaleOf returns the Scale of a deployment, replica set or stateful set.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var replicas, statusReplicas int32
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		replicas, statusReplicas, sel = deref32(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		replicas, statusReplicas, sel = deref32(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.StatefulSet:
		replicas, statusReplicas, sel = deref32(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	default:
		return nil, apierrors.NewInternalError(fmt.Errorf("no scale for %T", obj))
	}
	m := objectMetaOf(obj)
	selector := ""
	if sel != nil {
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			selector = s.String()
		}
	}
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
		Spec:   autoscalingv1.ScaleSpec{Replicas: replicas},
		Status: autoscalingv1.ScaleStatus{Replicas: statusReplicas, Selector: selector},
	}, nil
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	}
}

// scaleGVK is the kind of the scale subresource.
var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// serveScale serves the scale subresource of deployments, replica sets and
// stateful sets: GET reads the parent's Scale; PUT and PATCH (apply
// included) change the parent's .spec.replicas through its Scale.
func (s *Server) serveScale(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	var parent runtime.Object
	switch info.Verb {
	case "get":
		obj, err := s.storage.Get(ctx, res, ns, info.Name)
		if err != nil {
			return err
		}
		parent = obj
	case "update", "patch":
		change, err := readScaleChange(req, info.Verb)
		if err != nil {
			return err
		}
		dry, err := dryRun(req)
		if err != nil {
			return err
		}
		updated, _, err := s.storage.Update(ctx, res, ns, info.Name, func(cur runtime.Object) (runtime.Object, error) {
			return s.scaleParent(req, res, info.Name, cur, change)
		}, registry.UpdateOptions{Subresource: registry.SubScale, DryRun: dry, Admission: s.admission})
		if err != nil {
			return err
		}
		parent = updated
	default:
		return methodNotAllowed(res, info.Verb)
	}
	sc, err := scaleOf(parent)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// scaleChange is how a request changes a Scale.
type scaleChange struct {
	// want computes the desired Scale from a copy of the current one.
	want func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
	// applied is an apply patch's configuration, for the field manager;
	// nil for other requests.
	applied *unstructured.Unstructured
}

// readScaleChange reads the change a PUT (verb "update": the Scale in the
// body) or a PATCH (a JSON, merge or strategic patch of the Scale, or an
// apply configuration) asks for.
func readScaleChange(req *http.Request, verb string) (scaleChange, error) {
	if verb == "update" {
		if err := validateManagerParams(req, "update", ""); err != nil {
			return scaleChange{}, err
		}
		var body autoscalingv1.Scale
		if err := decodeTypedBody(req, scaleGVK, &body); err != nil {
			return scaleChange{}, err
		}
		return scaleChange{want: func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return body.DeepCopy(), nil }}, nil
	}
	patch, err := readBody(req)
	if err != nil {
		return scaleChange{}, err
	}
	ct := strings.TrimSpace(strings.Split(req.Header.Get("Content-Type"), ";")[0])
	if err := validateManagerParams(req, "patch", types.PatchType(ct)); err != nil {
		return scaleChange{}, err
	}
	if ct != string(types.ApplyYAMLPatchType) {
		return scaleChange{want: patchScale(ct, patch)}, nil
	}
	validation, err := fieldValidation(req)
	if err != nil {
		return scaleChange{}, err
	}
	applied, err := applyConfiguration(patch, validation)
	if err != nil {
		return scaleChange{}, err
	}
	// The field manager merges the configuration into the current Scale.
	return scaleChange{want: func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return cur, nil }, applied: applied}, nil
}

// patchScale returns the change that applies patch (of content type ct) to
// the current Scale. Without a resourceVersion in the patch, conflicts are
// retried.
func patchScale(ct string, patch []byte) func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		curJSON, err := json.Marshal(cur)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		patched, err := applyPatch(ct, curJSON, patch, &autoscalingv1.Scale{})
		if err != nil {
			return nil, err
		}
		var out autoscalingv1.Scale
		if _, err := decodeInto(patched, scaleGVK, &out, fieldValidationIgnore); err != nil {
			return nil, err
		}
		if !strings.Contains(string(patch), `"resourceVersion"`) {
			out.ResourceVersion = ""
		}
		return &out, nil
	}
}

// scaleParent returns the parent object cur (named name) with change
// applied to its Scale: the replicas the new Scale asks for, its
// resourceVersion as a precondition, and the managedFields the field
// manager computed on the Scale mapped back onto the parent (the Scale sees
// the parent's managedFields as its own, as upstream's ScaleHandler).
func (s *Server) scaleParent(req *http.Request, res *registry.Resource, name string, cur runtime.Object, change scaleChange) (runtime.Object, error) {
	curScale, err := scaleOf(cur)
	if err != nil {
		return nil, err
	}
	fields := managedfields.NewScaleHandler(objectMetaOf(cur).GetManagedFields(), res.GroupVersion(), replicasPaths)
	if curScale.ManagedFields, err = fields.ToSubresource(); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	want, err := change.want(curScale.DeepCopy())
	if err != nil {
		return nil, err
	}
	rv := want.ResourceVersion
	if want, err = s.trackScale(req, curScale, want, change.applied); err != nil {
		return nil, err
	}
	if want.Spec.Replicas < 0 {
		return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "replicas"), want.Spec.Replicas, "must be greater than or equal to 0")})
	}
	parentFields, err := fields.ToParent(want.ManagedFields)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	obj := cur.DeepCopyObject()
	setReplicas(obj, want.Spec.Replicas)
	m := objectMetaOf(obj)
	m.SetResourceVersion(rv)
	m.SetManagedFields(parentFields)
	return obj, nil
}

func successStatus(code int, res *registry.Resource, name string) *metav1.Status {
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: int32(code),
		Details: &metav1.StatusDetails{Name: name, Group: res.Group, Kind: res.Name}}
}

// serveBinding serves POST pods/binding: registry.Storage.Bind decides
// and binds; 201 with a Success status.
func (s *Server) serveBinding(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	if info.Verb != "create" {
		return methodNotAllowed(res, info.Verb)
	}
	var b corev1.Binding
	if err := decodeTypedBody(req, corev1.SchemeGroupVersion.WithKind("Binding"), &b); err != nil {
		return err
	}
	dry, err := dryRun(req)
	if err != nil {
		return err
	}
	if err := s.storage.Bind(ctx, res, ns, info.Name, &b, registry.BindOptions{DryRun: dry, Admission: s.admission}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, successStatus(http.StatusCreated, res, info.Name))
	return nil
}

// serveEviction serves POST pods/eviction (policy/v1 or v1beta1 Eviction):
// registry.Storage.Evict decides against the pod's disruption budget and
// evicts; 201 with a Success status.
func (s *Server) serveEviction(ctx context.Context, w http.ResponseWriter, req *http.Request, info *request.RequestInfo, res *registry.Resource, ns string) error {
	if info.Verb != "create" {
		return methodNotAllowed(res, info.Verb)
	}
	data, err := readBody(req)
	if err != nil {
		return err
	}
	var ev policyv1.Eviction
	gvk := policyv1.SchemeGroupVersion.WithKind("Eviction")
	var tm metav1.TypeMeta
	_ = json.Unmarshal(data, &tm)
	if tm.APIVersion == "policy/v1beta1" {
		gvk.Version = "v1beta1"
	}
	if _, err := decodeObject(req, data, gvk, &ev, fieldValidationIgnore); err != nil {
		return err
	}
	if ev.Name != "" && ev.Name != info.Name {
		return apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	dry, err := dryRun(req)
	if err != nil {
		return err
	}
	if err := s.storage.Evict(ctx, res, ns, info.Name, &ev, registry.EvictOptions{DryRun: dry, Admission: s.admission}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, successStatus(http.StatusCreated, res, info.Name))
	return nil
}
