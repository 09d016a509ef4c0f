package registry

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// eventStorage stores events.k8s.io/v1 Events as core/v1 Events, with
// upstream's field mapping (regarding = involvedObject, note = message,
// deprecated* = the core fields), so both APIs see the same events.
func eventStorage() *StorageConversion {
	return &StorageConversion{
		GVK: corev1.SchemeGroupVersion.WithKind("Event"),
		New: func() runtime.Object { return &corev1.Event{} },
		To:  func(o runtime.Object) runtime.Object { return eventToCore(o.(*eventsv1.Event)) },
		From: func(o runtime.Object) runtime.Object {
			return eventFromCore(o.(*corev1.Event))
		},
	}
}

func eventToCore(e *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{
		ObjectMeta:          *e.ObjectMeta.DeepCopy(),
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		Source:              e.DeprecatedSource,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Action:              e.Action,
		Related:             e.Related.DeepCopy(),
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
	}
	if e.Series != nil {
		out.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

func eventFromCore(e *corev1.Event) *eventsv1.Event {
	out := &eventsv1.Event{
		ObjectMeta:               *e.ObjectMeta.DeepCopy(),
		Regarding:                e.InvolvedObject,
		Reason:                   e.Reason,
		Note:                     e.Message,
		DeprecatedSource:         e.Source,
		DeprecatedFirstTimestamp: e.FirstTimestamp,
		DeprecatedLastTimestamp:  e.LastTimestamp,
		DeprecatedCount:          e.Count,
		Type:                     e.Type,
		EventTime:                e.EventTime,
		Action:                   e.Action,
		Related:                  e.Related.DeepCopy(),
		ReportingController:      e.ReportingController,
		ReportingInstance:        e.ReportingInstance,
	}
	if e.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

func eventsV1Strategy() Strategy {
	return Strategy{
		Fields: func(obj runtime.Object) fields.Set {
			e := obj.(*eventsv1.Event)
			return fields.Set{
				"regarding.kind":      e.Regarding.Kind,
				"regarding.namespace": e.Regarding.Namespace,
				"regarding.name":      e.Regarding.Name,
				"regarding.uid":       string(e.Regarding.UID),
				"reason":              e.Reason,
				"reportingController": e.ReportingController,
				"type":                e.Type,
			}
		},
	}
}
