package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// serveWatch streams watch events as a chunked JSON stream of
// metav1.WatchEvent, served by the watch cache. Semantics, as upstream:
//
//   - resourceVersion unset: synthetic ADDED events for the current state
//     (a consistent read), then changes;
//   - "0": the same from whatever state the cache holds;
//   - N: the changes after N; an N older than the cache's history window is
//     an ERROR event carrying 410 Expired;
//   - sendInitialEvents=true (with resourceVersionMatch=NotOlderThan and
//     allowWatchBookmarks): the state at least as new as N, then a BOOKMARK
//     annotated k8s.io/initial-events-end, then changes;
//   - allowWatchBookmarks: periodic BOOKMARK events;
//   - timeoutSeconds: the stream ends after that long (default
//     Config.WatchTimeout, jittered).
func (s *Server) serveWatch(ctx context.Context, w http.ResponseWriter, req *http.Request, res *registry.Resource, ns, name string) error {
	out, err := negotiate(req)
	if err != nil {
		return err
	}
	o, err := listOptions(req, res, ns)
	if err != nil {
		return err
	}
	if name != "" {
		// /watch/namespaces/ns/pods/name (deprecated form): a name selector.
		sel := fields.OneTermEqualSelector("metadata.name", name)
		if o.Filter.Field != nil {
			sel = fields.AndSelectors(sel, o.Filter.Field)
		}
		o.Filter.Field = sel
	}
	q := req.URL.Query()
	bookmarks := q.Get("allowWatchBookmarks") == "true"
	var sendInitial *bool
	if v := q.Get("sendInitialEvents"); v != "" {
		b := v == "true"
		sendInitial = &b
	}
	if err := validateWatch(o, sendInitial, bookmarks); err != nil {
		return err
	}
	var rv int64
	if o.ResourceVersion != "" {
		rv, _ = strconv.ParseInt(o.ResourceVersion, 10, 64)
	}
	wo := registry.WatchOptions{Filter: o.Filter, Revision: rv, Bookmarks: bookmarks}
	switch {
	case sendInitial != nil:
		wo.InitialEvents = *sendInitial
		wo.InitialEventsEndBookmark = *sendInitial
		if *sendInitial {
			if err := s.cache.WaitFresh(ctx, rv); err != nil {
				return err
			}
		}
	case o.ResourceVersion == "":
		wo.InitialEvents = true
		if err := s.cache.WaitFresh(ctx, 0); err != nil {
			return err
		}
	case o.ResourceVersion == "0":
		wo.InitialEvents = true
	default:
		if rv > s.cache.Revision() {
			if err := s.cache.WaitFresh(ctx, rv); err != nil {
				return err
			}
		}
	}
	timeout := s.cfg.WatchTimeout
	timeout += time.Duration(rand.Int64N(int64(timeout) + 1)) // like upstream: [min, 2*min)
	if v := q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", v))
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	cw, werr := s.cache.Watch(res, wo)
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	if werr != nil {
		// Like upstream's watch cache: 200, then one ERROR event.
		writeEvent(w, watch.Error, mustJSON(statusOf(werr)))
		return nil
	}
	defer cw.Stop()
	if flusher != nil {
		flusher.Flush()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return nil
		case ev, ok := <-cw.Events():
			if !ok {
				return nil
			}
			var obj []byte
			switch {
			case ev.Type == watch.Bookmark:
				obj = mustJSON(ev.Object)
			case out == outputTable:
				t, err := s.toTable(req, res, ev.Object)
				if err != nil {
					continue
				}
				obj = mustJSON(t)
			case out == outputPartial:
				obj = mustJSON(toPartial(ev.Object))
			default:
				obj = ev.JSON()
			}
			if err := writeEvent(w, ev.Type, obj); err != nil {
				return nil
			}
			if flusher != nil && len(cw.Events()) == 0 {
				flusher.Flush()
			}
		}
	}
}

// writeEvent writes one {"type":...,"object":...} line.
func writeEvent(w http.ResponseWriter, t watch.EventType, obj []byte) error {
	var buf bytes.Buffer
	buf.Grow(len(obj) + 32)
	buf.WriteString(`{"type":"`)
	buf.WriteString(string(t))
	buf.WriteString(`","object":`)
	buf.Write(obj)
	buf.WriteString("}\n")
	_, err := w.Write(buf.Bytes())
	if f, ok := w.(http.Flusher); ok && t == watch.Error {
		f.Flush()
	}
	return err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

func statusOf(err error) *metav1.Status {
	st, ok := err.(apierrors.APIStatus)
	if !ok {
		st = apierrors.NewInternalError(err)
	}
	s := st.Status()
	s.Kind, s.APIVersion = "Status", "v1"
	return &s
}

// validateWatch checks the watch-list parameters as upstream does.
func validateWatch(o registry.ListOptions, sendInitial *bool, bookmarks bool) error {
	var errs field.ErrorList
	if sendInitial != nil {
		if o.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), fmt.Sprintf("sendInitialEvents requires setting resourceVersionMatch to %s", metav1.ResourceVersionMatchNotOlderThan)))
		}
		if !bookmarks {
			errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "allowWatchBookmarks must be set to true when sendInitialEvents is set"))
		}
		if o.Continue != "" {
			errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for continue"))
		}
	} else if o.ResourceVersionMatch != "" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
	}
	if o.ResourceVersion != "" {
		if _, err := strconv.ParseUint(o.ResourceVersion, 10, 64); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %q", o.ResourceVersion))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", errs)
	}
	return nil
}
