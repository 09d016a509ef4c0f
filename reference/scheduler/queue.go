package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// queuedPod is a pending pod and its scheduling history.
type queuedPod struct {
	pod *corev1.Pod
	// attempts is the number of scheduling attempts so far.
	attempts int
	// added is when the pod first entered the queue; timestamp when it
	// last did (the tie-breaker of the default order).
	added     time.Time
	timestamp time.Time
	// backoffUntil is when the pod may leave the backoffQ.
	backoffUntil time.Time
	// unschedulableSince is when it entered the unschedulable set.
	unschedulableSince time.Time
	// cycle is the scheduling cycle that popped the pod last.
	cycle int64
	// changedInFlight: the pod's spec or labels changed during its attempt.
	changedInFlight bool
	index           int // heap index
}

// podHeap is a heap of queued pods under less.
type podHeap struct {
	items []*queuedPod
	less  func(a, b *queuedPod) bool
}

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}
func (h *podHeap) Push(x any) {
	q := x.(*queuedPod)
	q.index = len(h.items)
	h.items = append(h.items, q)
}
func (h *podHeap) Pop() any {
	n := len(h.items)
	q := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	q.index = -1
	return q
}

// where a pod is in the queue.
const (
	inActive = iota + 1
	inBackoff
	inUnschedulable
	inFlight
	inGated
)

// queueDepths is the number of pods in each part of the queue.
type queueDepths struct{ active, backoff, unschedulable, gated int }

// schedulingQueue is the kube-scheduler's three-part queue: activeQ (a
// heap ordered by QueueSort or priority then age), backoffQ (pods waiting
// out their backoff) and unschedulable pods waiting for a cluster event.
type schedulingQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	closed  bool
	now     func() time.Time
	initial time.Duration
	max     time.Duration
	// unschedulableTimeout: pods unschedulable for longer are retried
	// without an event (upstream's 5 minutes).
	unschedulableTimeout time.Duration

	active        *podHeap
	backoff       *podHeap
	unschedulable map[types.UID]*queuedPod
	// gated holds pods with spec.schedulingGates: they are not scheduled
	// until the gates are removed (upstream's SchedulingGates PreEnqueue).
	gated map[types.UID]*queuedPod
	where map[types.UID]int
	pods  map[types.UID]*queuedPod

	// nominated are the queued pods with status.nominatedNodeName, by node:
	// room preemption made for them that other pods must not take.
	nominated map[string]map[types.UID]*corev1.Pod

	cycle int64
	// moveCycle is the scheduling cycle during which pods were last moved
	// by an event: a pod popped before it and found unschedulable goes to
	// backoffQ, not to the unschedulable set, so the event is not missed.
	moveCycle int64
	onChange  func(queueDepths)
	// lastLeftoverFlush is when Flush last looked for pods unschedulable
	// for longer than unschedulableTimeout.
	lastLeftoverFlush time.Time
}

func newSchedulingQueue(less func(a, b *corev1.Pod) bool, initial, max time.Duration, now func() time.Time) *schedulingQueue {
	q := &schedulingQueue{
		now: now, initial: initial, max: max, unschedulableTimeout: 5 * time.Minute,
		unschedulable: map[types.UID]*queuedPod{},
		gated:         map[types.UID]*queuedPod{},
		nominated:     map[string]map[types.UID]*corev1.Pod{},
		where:         map[types.UID]int{},
		pods:          map[types.UID]*queuedPod{},
		moveCycle:     -1,
	}
	q.cond = sync.NewCond(&q.mu)
	q.active = &podHeap{less: func(a, b *queuedPod) bool {
		if less != nil {
			return less(a.pod, b.pod)
		}
		pa, pb := corev1helpers.PodPriority(a.pod), corev1helpers.PodPriority(b.pod)
		return pa > pb || pa == pb && a.timestamp.Before(b.timestamp)
	}}
	q.backoff = &podHeap{less: func(a, b *queuedPod) bool { return a.backoffUntil.Before(b.backoffUntil) }}
	return q
}

func (q *schedulingQueue) changed() {
	if q.onChange != nil {
		q.onChange(queueDepths{active: q.active.Len(), backoff: q.backoff.Len(), unschedulable: len(q.unschedulable), gated: len(q.gated)})
	}
}

// Add queues a new pending pod in activeQ.
func (q *schedulingQueue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.where[pod.UID]; ok {
		q.updateLocked(pod)
		return
	}
	now := q.now()
	qp := &queuedPod{pod: pod, added: now, timestamp: now}
	q.pods[pod.UID] = qp
	q.nominate(nil, pod)
	q.enqueueLocked(qp)
	q.changed()
}

// enqueueLocked puts a new pod in activeQ, or aside while it is gated.
func (q *schedulingQueue) enqueueLocked(qp *queuedPod) {
	if len(qp.pod.Spec.SchedulingGates) > 0 {
		q.gated[qp.pod.UID] = qp
		q.where[qp.pod.UID] = inGated
		return
	}
	q.toActiveLocked(qp)
}

func (q *schedulingQueue) toActiveLocked(qp *queuedPod) {
	heap.Push(q.active, qp)
	q.where[qp.pod.UID] = inActive
	q.cond.Signal()
}

// Update replaces a pending pod: a pod waiting for an event is retried if
// its spec or labels changed (the change may make it schedulable).
func (q *schedulingQueue) Update(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.where[pod.UID]; !ok {
		now := q.now()
		qp := &queuedPod{pod: pod, added: now, timestamp: now}
		q.pods[pod.UID] = qp
		q.nominate(nil, pod)
		q.enqueueLocked(qp)
		q.changed()
		return
	}
	q.updateLocked(pod)
}

func (q *schedulingQueue) updateLocked(pod *corev1.Pod) {
	qp := q.pods[pod.UID]
	old := qp.pod
	qp.pod = pod
	q.nominate(old, pod)
	switch q.where[pod.UID] {
	case inActive:
		heap.Fix(q.active, qp.index)
	case inBackoff:
		heap.Fix(q.backoff, qp.index)
	case inFlight:
		// Changed during its attempt: a failure must not park it waiting
		// for an event that already happened.
		if !equality.Semantic.DeepEqual(old.Spec, pod.Spec) || !equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
			qp.changedInFlight = true
		}
	case inGated:
		if len(pod.Spec.SchedulingGates) == 0 {
			delete(q.gated, pod.UID)
			qp.timestamp = q.now()
			q.toActiveLocked(qp)
			q.changed()
		}
	case inUnschedulable:
		if equality.Semantic.DeepEqual(old.Spec, pod.Spec) && equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
			return
		}
		delete(q.unschedulable, pod.UID)
		q.moveLocked(qp)
		q.changed()
	}
}

// Delete drops a pod from the queue.
func (q *schedulingQueue) Delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.pods[uid]
	if !ok {
		return
	}
	switch q.where[uid] {
	case inActive:
		heap.Remove(q.active, qp.index)
	case inBackoff:
		heap.Remove(q.backoff, qp.index)
	case inUnschedulable:
		delete(q.unschedulable, uid)
	case inGated:
		delete(q.gated, uid)
	}
	q.nominate(qp.pod, nil)
	delete(q.where, uid)
	delete(q.pods, uid)
	q.changed()
}

// PodOf returns qp's pod as the queue holds it now. The queue replaces a
// queued pod's object on updates under its lock, so the scheduling loop
// reads it through here, never through qp.pod directly.
func (q *schedulingQueue) PodOf(qp *queuedPod) *corev1.Pod {
	q.mu.Lock()
	defer q.mu.Unlock()
	return qp.pod
}

// Pop blocks until a pod is active and returns it, marked in flight; it
// returns nil when ctx ends or the queue is closed.
func (q *schedulingQueue) Pop(ctx context.Context) (*queuedPod, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	if q.closed || ctx.Err() != nil {
		return nil, 0
	}
	qp := heap.Pop(q.active).(*queuedPod)
	q.where[qp.pod.UID] = inFlight
	q.cycle++
	qp.cycle = q.cycle
	qp.attempts++
	q.changed()
	return qp, q.cycle
}

// Close wakes Pop for good.
func (q *schedulingQueue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Done forgets an in-flight pod that was scheduled (assumed).
func (q *schedulingQueue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.where[uid] == inFlight {
		q.nominate(q.pods[uid].pod, nil)
		delete(q.where, uid)
		delete(q.pods, uid)
	}
}

// backoffDuration is the pod's backoff: initial doubled per failed
// attempt, capped at max.
func (q *schedulingQueue) backoffDuration(qp *queuedPod) time.Duration {
	d := q.initial
	for i := 1; i < qp.attempts; i++ {
		d *= 2
		if d >= q.max {
			return q.max
		}
	}
	return d
}

// Requeue puts back an in-flight pod whose attempt failed. unschedulable
// pods wait for an event (or go to backoffQ if one happened during their
// attempt); errors go to backoffQ. A pod deleted meanwhile is dropped.
func (q *schedulingQueue) Requeue(qp *queuedPod, pod *corev1.Pod, unschedulable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w, ok := q.where[qp.pod.UID]; !ok || w != inFlight {
		return
	}
	if pod != nil {
		q.nominate(qp.pod, pod)
		qp.pod = pod
	}
	now := q.now()
	qp.timestamp = now
	qp.backoffUntil = now.Add(q.backoffDuration(qp))
	changed := qp.changedInFlight
	qp.changedInFlight = false
	if unschedulable && q.moveCycle < qp.cycle && !changed {
		qp.unschedulableSince = now
		q.unschedulable[qp.pod.UID] = qp
		q.where[qp.pod.UID] = inUnschedulable
	} else {
		heap.Push(q.backoff, qp)
		q.where[qp.pod.UID] = inBackoff
	}
	q.changed()
}

// RequeueAfterBindFailure puts back a pod that was assumed and whose
// binding failed (it is no longer in flight in the queue's books).
func (q *schedulingQueue) RequeueAfterBindFailure(qp *queuedPod, pod *corev1.Pod) {
	q.mu.Lock()
	if _, ok := q.where[qp.pod.UID]; ok {
		q.mu.Unlock()
		return // already queued again
	}
	q.pods[qp.pod.UID] = qp
	q.where[qp.pod.UID] = inFlight
	q.nominate(nil, qp.pod)
	q.mu.Unlock()
	q.Requeue(qp, pod, false)
}

func (q *schedulingQueue) moveLocked(qp *queuedPod) {
	if q.now().Before(qp.backoffUntil) {
		heap.Push(q.backoff, qp)
		q.where[qp.pod.UID] = inBackoff
		return
	}
	qp.timestamp = q.now()
	q.toActiveLocked(qp)
}

// MoveAllUnschedulable moves every unschedulable pod to activeQ or, while
// its backoff lasts, to backoffQ: a cluster event may have made room.
func (q *schedulingQueue) MoveAllUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for uid, qp := range q.unschedulable {
		delete(q.unschedulable, uid)
		q.moveLocked(qp)
	}
	q.moveCycle = q.cycle
	q.changed()
}

// Flush moves pods whose backoff expired to activeQ and retries pods
// unschedulable for longer than unschedulableTimeout.
func (q *schedulingQueue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	moved := false
	for q.backoff.Len() > 0 && !now.Before(q.backoff.items[0].backoffUntil) {
		qp := heap.Pop(q.backoff).(*queuedPod)
		qp.timestamp = now
		q.toActiveLocked(qp)
		moved = true
	}
	// Long-waiting unschedulable pods are looked for every 30 s, as
	// upstream's flushUnschedulablePodsLeftover.
	if now.Sub(q.lastLeftoverFlush) < 30*time.Second {
		if moved {
			q.changed()
		}
		return
	}
	q.lastLeftoverFlush = now
	for uid, qp := range q.unschedulable {
		if now.Sub(qp.unschedulableSince) > q.unschedulableTimeout {
			delete(q.unschedulable, uid)
			q.moveLocked(qp)
			moved = true
		}
	}
	if moved {
		q.changed()
	}
}

// Depths returns the number of pods in each part of the queue.
func (q *schedulingQueue) Depths() queueDepths {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueDepths{active: q.active.Len(), backoff: q.backoff.Len(), unschedulable: len(q.unschedulable), gated: len(q.gated)}
}

// Where says which part of the queue holds the pod (0 when none).
func (q *schedulingQueue) Where(uid types.UID) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.where[uid]
}

// nominate records pod's nominated node (replacing an older one); call
// with mu held whenever a queued pod's object changes.
func (q *schedulingQueue) nominate(old, pod *corev1.Pod) {
	if old != nil && old.Status.NominatedNodeName != "" {
		if m := q.nominated[old.Status.NominatedNodeName]; m != nil {
			delete(m, old.UID)
			if len(m) == 0 {
				delete(q.nominated, old.Status.NominatedNodeName)
			}
		}
	}
	if pod != nil && pod.Status.NominatedNodeName != "" {
		m := q.nominated[pod.Status.NominatedNodeName]
		if m == nil {
			m = map[types.UID]*corev1.Pod{}
			q.nominated[pod.Status.NominatedNodeName] = m
		}
		m[pod.UID] = pod
	}
}

// Nominated returns the pods nominated to each node (a copy).
func (q *schedulingQueue) Nominated() map[string][]*corev1.Pod {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.nominated) == 0 {
		return nil
	}
	out := make(map[string][]*corev1.Pod, len(q.nominated))
	for node, m := range q.nominated {
		for _, p := range m {
			out[node] = append(out[node], p)
		}
	}
	return out
}
