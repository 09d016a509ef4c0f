package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// Field validation levels (the fieldValidation query parameter).
const (
	fieldValidationIgnore = "Ignore"
	fieldValidationWarn   = "Warn"
	fieldValidationStrict = "Strict"
)

// fieldValidation returns the request's fieldValidation level (default
// Warn, as upstream), or, for an unknown one, upstream's 422 Invalid on the
// request's options.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return fieldValidationWarn, nil
	case fieldValidationIgnore, fieldValidationWarn, fieldValidationStrict:
		return v, nil
	}
	return "", invalidOptions(r, field.NotSupported(field.NewPath("fieldValidation"), v,
		[]string{"", fieldValidationIgnore, fieldValidationStrict, fieldValidationWarn}))
}

// invalidOptions is upstream's error for bad write options (dryRun,
// fieldValidation): 422 Invalid on CreateOptions, UpdateOptions,
// PatchOptions or DeleteOptions, by the request's method.
func invalidOptions(r *http.Request, errs ...*field.Error) error {
	kind := "CreateOptions"
	switch r.Method {
	case http.MethodPut:
		kind = "UpdateOptions"
	case http.MethodPatch:
		kind = "PatchOptions"
	case http.MethodDelete:
		kind = "DeleteOptions"
	}
	return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
}

// readBody reads the request body; an oversized body is a 413.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", mbe.Limit))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading the request body: %v", err))
	}
	return data, nil
}

// toJSON converts a YAML body to JSON; JSON passes unchanged.
func toJSON(data []byte, contentType string) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty")
	}
	if strings.Contains(mt, "yaml") && trimmed[0] != '{' {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error converting YAML to JSON: %v", err))
		}
		return j, nil
	}
	return trimmed, nil
}

// decodeInto decodes data (JSON) into obj of kind gvk, checking apiVersion
// and kind and applying field validation: unknown or duplicate fields are a
// 400 with Strict, warnings with Warn. It returns the warnings.
func decodeInto(data []byte, gvk schema.GroupVersionKind, obj runtime.Object, validation string) ([]string, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("couldn't get version/kind; json parse error: %v", err))
	}
	if tm.APIVersion != "" && tm.APIVersion != gvk.GroupVersion().String() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, gvk.GroupVersion()))
	}
	if tm.Kind != "" && tm.Kind != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", tm.Kind, gvk.Kind))
	}
	strictErrs, err := kjson.UnmarshalStrict(data, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding the request body as %s: %v", gvk.Kind, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	if len(strictErrs) == 0 || validation == fieldValidationIgnore {
		return nil, nil
	}
	msgs := make([]string, len(strictErrs))
	for i, e := range strictErrs {
		msgs[i] = e.Error()
	}
	if validation == fieldValidationStrict {
		return nil, apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
	}
	return msgs, nil
}

// decodeBody reads and decodes the request body into a new object of r.
func decodeBody(req *http.Request, r *registry.Resource, validation string) (runtime.Object, []string, error) {
	data, err := readBody(req)
	if err != nil {
		return nil, nil, err
	}
	obj := r.New()
	warnings, err := decodeObject(req, data, r.GroupVersionKind(), obj, validation)
	return obj, warnings, err
}

// protobufCodec decodes the Kubernetes protobuf envelope, which client-go's
// typed clients send by default for the built-in types.
var protobufCodec = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

const contentTypeProtobuf = "application/vnd.kubernetes.protobuf"

// decodeTypedBody reads a subresource request's body (binding, scale,
// TokenRequest, ...) into obj of kind gvk, honouring the request's
// fieldValidation level; warnings are dropped, as upstream does for these.
func decodeTypedBody(req *http.Request, gvk schema.GroupVersionKind, obj runtime.Object) error {
	validation, err := fieldValidation(req)
	if err != nil {
		return err
	}
	data, err := readBody(req)
	if err != nil {
		return err
	}
	_, err = decodeObject(req, data, gvk, obj, validation)
	return err
}

// decodeObject decodes a request body (JSON, YAML or Kubernetes protobuf,
// by Content-Type) into obj of kind gvk; see decodeInto.
func decodeObject(req *http.Request, data []byte, gvk schema.GroupVersionKind, obj runtime.Object, validation string) ([]string, error) {
	ct := req.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" {
		mt, err = "application/json", nil // upstream's default input type
	}
	switch {
	case err != nil, mt != "application/json" && mt != "application/yaml" && mt != contentTypeProtobuf:
		return nil, statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, %s", contentTypeProtobuf))
	}
	if mt == contentTypeProtobuf {
		out, actual, err := protobufCodec.Decode(data, &gvk, obj)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding the protobuf request body: %v", err))
		}
		if out != obj || actual == nil || (actual.Kind != gvk.Kind) || (actual.GroupVersion() != gvk.GroupVersion() && !(gvk.Kind == "DeleteOptions")) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s)", gvk.Kind))
		}
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		return nil, nil
	}
	data, err = toJSON(data, ct)
	if err != nil {
		return nil, err
	}
	return decodeInto(data, gvk, obj, validation)
}

// addWarnings sets Warning headers as upstream does (299 "-" "text").
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, msg := range warnings {
		w.Header().Add("Warning", "299 - "+strconv.Quote(msg))
	}
}

// writeJSON writes v as JSON with the status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// writeError writes err as a metav1.Status; errors that are not API errors
// are 500s.
func writeError(w http.ResponseWriter, err error) {
	var st apierrors.APIStatus
	switch {
	case errors.As(err, &st):
	case errors.Is(err, context.DeadlineExceeded):
		// Like upstream's timeout filter: 504 with reason Timeout.
		st = apierrors.NewTimeoutError("request did not complete within requested timeout - context deadline exceeded", 0)
	default:
		st = apierrors.NewInternalError(err)
	}
	status := st.Status()
	status.Kind, status.APIVersion = "Status", "v1"
	if status.Code == 0 {
		status.Code = http.StatusInternalServerError
	}
	if status.Details != nil && status.Details.RetryAfterSeconds > 0 && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(int(status.Details.RetryAfterSeconds)))
	}
	writeJSON(w, int(status.Code), status)
}

// output says what representation the client asked for.
type output int

const (
	outputObject output = iota
	outputTable
	outputPartial
)

// negotiate reads the Accept header: a Table or PartialObjectMetadata
// (meta.k8s.io, v1 or v1beta1) when asked for, JSON otherwise; a client
// accepting only media types we cannot produce gets 406.
func negotiate(r *http.Request) (output, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return outputObject, nil
	}
	jsonOK := false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "application/*", "*/*", "application/yaml", "application/vnd.kubernetes.protobuf":
		default:
			continue
		}
		if mt == "application/vnd.kubernetes.protobuf" {
			continue
		}
		if as := params["as"]; as != "" {
			if params["g"] != "meta.k8s.io" || (params["v"] != "v1" && params["v"] != "v1beta1") {
				continue
			}
			switch as {
			case "Table":
				return outputTable, nil
			case "PartialObjectMetadata", "PartialObjectMetadataList":
				return outputPartial, nil
			}
			continue
		}
		jsonOK = true
	}
	if !jsonOK {
		return 0, statusError(http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
			"only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io")
	}
	return outputObject, nil
}

// statusError builds an API error for the codes apimachinery has no
// constructor for (406, 415).
func statusError(code int, reason metav1.StatusReason, msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}}
}

var metaAccessor = meta.Accessor

// objectMetaOf returns the metadata accessor of a typed API object.
func objectMetaOf(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("apiserver: %T has no ObjectMeta", obj))
	}
	return m
}

// toPartial returns the PartialObjectMetadata (or list) form of obj.
func toPartial(obj runtime.Object) runtime.Object {
	if meta.IsListType(obj) {
		items, _ := meta.ExtractList(obj)
		lm, _ := meta.ListAccessor(obj)
		out := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		out.ResourceVersion, out.Continue = lm.GetResourceVersion(), lm.GetContinue()
		for _, it := range items {
			out.Items = append(out.Items, *toPartial(it).(*metav1.PartialObjectMetadata))
		}
		if out.Items == nil {
			out.Items = []metav1.PartialObjectMetadata{}
		}
		return out
	}
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if om, ok := reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta); ok {
		p.ObjectMeta = *om.DeepCopy()
	}
	return p
}
