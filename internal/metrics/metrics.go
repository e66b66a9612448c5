// Package metrics defines a node's Prometheus metrics and the hooks the
// server code calls to move them.
//
// Every node has its own registry, so several nodes in one process (tests)
// count apart. Labels come from fixed sets defined here: no account or
// device name, no content and nothing about who talks to whom ever becomes
// a label value. Every hook is safe on a nil *Metrics, so code built
// without metrics (unit tests of a package) calls them unchanged.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Connection and registration kinds.
const (
	KindDevice     = "device"     // PhoneX device, by certificate
	KindPhone      = "phone"      // standard SIP phone, by digest
	KindFederation = "federation" // another cluster (reserved: no federation yet)
)

// Kinds lists the connection kinds.
var Kinds = []string{KindDevice, KindPhone, KindFederation}

// Reasons a MESSAGE is refused. Each SIP answer maps to one (Refusal).
const (
	ReasonBadRequest      = "bad_request"     // malformed, empty
	ReasonUnauthenticated = "unauthenticated" // challenged or bad credentials
	ReasonForbidden       = "forbidden"       // not on the recipient's contact list, From not the sender
	ReasonNotFound        = "not_found"       // no such account
	ReasonTooLarge        = "too_large"       // body over the limit
	ReasonRateLimited     = "rate_limited"    // sender over its message rate
	ReasonUnavailable     = "unavailable"     // recipient disabled, no device, storage full
	ReasonNotAcceptable   = "not_acceptable"  // only phones, which cannot open envelopes
	ReasonInternal        = "internal"        // store failure
	ReasonOther           = "other"
)

// Reasons lists the refusal reasons.
var Reasons = []string{ReasonBadRequest, ReasonUnauthenticated, ReasonForbidden, ReasonNotFound, ReasonTooLarge,
	ReasonRateLimited, ReasonUnavailable, ReasonNotAcceptable, ReasonInternal, ReasonOther}

// Causes a call fails. Each final SIP answer to an INVITE maps to one
// (CallCause).
const (
	CauseBusy        = "busy"         // 486, 600
	CauseDeclined    = "declined"     // 603
	CauseNoAnswer    = "no_answer"    // 408
	CauseCancelled   = "cancelled"    // 487
	CauseOffline     = "offline"      // 480
	CauseForbidden   = "forbidden"    // 403, 404: not a mutual contact
	CauseRateLimited = "rate_limited" // 503 from the call limit
	CauseClient      = "client_error" // other 4xx
	CauseServer      = "server_error" // 5xx
	CauseOther       = "other"
)

// Causes lists the call failure causes.
var Causes = []string{CauseBusy, CauseDeclined, CauseNoAnswer, CauseCancelled, CauseOffline, CauseForbidden,
	CauseRateLimited, CauseClient, CauseServer, CauseOther}

// Password check kinds.
const (
	AuthUnlock = "unlock" // a device opening its profile
	AuthLogin  = "login"  // a new device by password
	AuthSIP    = "sip"    // a standard phone's digest
)

// AuthKinds lists the password check kinds.
var AuthKinds = []string{AuthUnlock, AuthLogin, AuthSIP}

// States an attempt is refused in before its password is checked.
const (
	RefusedLocked     = "locked"      // locked until the operator unlocks
	RefusedThrottled  = "throttled"   // must wait
	RefusedHumanCheck = "human_check" // needs a proof of work
)

// RefusedStates lists them.
var RefusedStates = []string{RefusedLocked, RefusedThrottled, RefusedHumanCheck}

// Store operations timed. Other operations count as "other".
var StoreOps = []string{"enqueue", "pending", "delivered", "attempt", "account", "device", "routing", "contacts", "keys", "ping", "queue", "other"}

// Bus operations timed (the routing between nodes).
var BusOps = []string{"publish", "request", "deliver", "other"}

// Metrics is one node's metrics.
type Metrics struct {
	reg *prometheus.Registry

	registrations map[string]prometheus.Counter
	messages      map[string]prometheus.Counter // accepted, stored, delivered
	refused       map[string]prometheus.Counter
	delivery      prometheus.Histogram

	callsStarted  prometheus.Counter
	callsAnswered prometheus.Counter
	callsFailed   map[string]prometheus.Counter

	authFailures map[string]prometheus.Counter
	authRefused  map[[2]string]prometheus.Counter

	storeLatency map[string]prometheus.Observer
	busLatency   map[string]prometheus.Observer

	pending, pendingBytes, pendingOldest prometheus.Gauge
}

// Metric names, for the dashboard and alert checks and for docs.
const (
	NameRegistrations   = "phonex_sip_registrations_total"
	NameConnections     = "phonex_sip_connections"
	NameMessages        = "phonex_messages_total"
	NameRefused         = "phonex_messages_refused_total"
	NameDelivery        = "phonex_message_delivery_seconds"
	NamePending         = "phonex_pending_deliveries"
	NamePendingBytes    = "phonex_pending_bytes"
	NamePendingOldest   = "phonex_pending_oldest_age_seconds"
	NameCallsStarted    = "phonex_calls_started_total"
	NameCallsAnswered   = "phonex_calls_answered_total"
	NameCallsFailed     = "phonex_calls_failed_total"
	NameRelayAllocs     = "phonex_relay_allocations"
	NameRelayAllocTotal = "phonex_relay_allocations_total"
	NameRelayRefused    = "phonex_relay_allocations_refused_total"
	NameAuthFailures    = "phonex_auth_failures_total"
	NameAuthRefused     = "phonex_auth_refused_total"
	NameStoreLatency    = "phonex_store_operation_seconds"
	NameBusLatency      = "phonex_bus_operation_seconds"
	NameReady           = "phonex_ready"
)

// New makes a node's metrics in a registry of their own, with the Go
// runtime's and the process's collectors (CPU seconds, memory, open files).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}

	regs := counterVec(reg, NameRegistrations, "Successful SIP registrations (new and refreshed), by connection kind.", "kind")
	m.registrations = children(regs, Kinds)
	msgs := counterVec(reg, NameMessages, "SIP MESSAGEs by stage: accepted (200 to the sender), stored (copies written, one per target device that did not take the MESSAGE before the sender's 200), delivered (copies a device took).", "stage")
	m.messages = children(msgs, []string{"accepted", "stored", "delivered"})
	m.refused = children(counterVec(reg, NameRefused, "SIP MESSAGEs refused, by reason.", "reason"), Reasons)
	m.delivery = prometheus.NewHistogram(prometheus.HistogramOpts{Name: NameDelivery,
		Help:    "Time from a message's acceptance to a device taking its copy.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600}})
	reg.MustRegister(m.delivery)

	m.callsStarted = counter(reg, NameCallsStarted, "Calls (initial INVITEs) the node began to route.")
	m.callsAnswered = counter(reg, NameCallsAnswered, "Calls answered (a 2xx relayed to the caller).")
	m.callsFailed = children(counterVec(reg, NameCallsFailed, "Calls that ended without an answer, by cause.", "cause"), Causes)

	m.authFailures = children(counterVec(reg, NameAuthFailures, "Wrong passwords, by kind of check.", "kind"), AuthKinds)
	ar := counterVec(reg, NameAuthRefused, "Password attempts refused before the check: subject locked out, throttled, or needing a proof of work.", "kind", "state")
	m.authRefused = map[[2]string]prometheus.Counter{}
	for _, k := range AuthKinds {
		for _, s := range RefusedStates {
			m.authRefused[[2]string{k, s}] = ar.WithLabelValues(k, s)
		}
	}

	opBuckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}
	st := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameStoreLatency, Help: "Store operation latency, by operation.", Buckets: opBuckets}, []string{"op"})
	bus := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameBusLatency, Help: "Latency of operations on the bus between nodes, by operation.", Buckets: opBuckets}, []string{"op"})
	reg.MustRegister(st, bus)
	m.storeLatency, m.busLatency = map[string]prometheus.Observer{}, map[string]prometheus.Observer{}
	for _, op := range StoreOps {
		m.storeLatency[op] = st.WithLabelValues(op)
	}
	for _, op := range BusOps {
		m.busLatency[op] = bus.WithLabelValues(op)
	}

	m.pending = gauge(reg, NamePending, "Copies waiting for a device, cluster-wide (read from the store).")
	m.pendingBytes = gauge(reg, NamePendingBytes, "Bytes of copies waiting for devices, cluster-wide.")
	m.pendingOldest = gauge(reg, NamePendingOldest, "Age of the oldest copy waiting for a device; 0 when none waits.")
	return m
}

func counter(reg *prometheus.Registry, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

func gauge(reg *prometheus.Registry, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	reg.MustRegister(g)
	return g
}

func counterVec(reg *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	reg.MustRegister(v)
	return v
}

// children resolves every label value once, so a hook is a map read and an
// atomic add, and every series exists (at 0) from the start: a rate()
// over a counter that appears late misses its first increments.
func children(v *prometheus.CounterVec, values []string) map[string]prometheus.Counter {
	m := make(map[string]prometheus.Counter, len(values))
	for _, s := range values {
		m[s] = v.WithLabelValues(s)
	}
	return m
}

// Registry is the node's registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// GaugeFunc registers a gauge read when scraped: state the node holds
// anyway (live connections, relay allocations). Values of labels must be
// from a fixed set.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	if m == nil {
		return
	}
	// A second listener or relay of the same kind (a restarted part)
	// keeps the first's series rather than fail.
	m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// CounterFunc registers a counter read when scraped.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	if m == nil {
		return
	}
	m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Connections exposes the live SIP connections of kind (a Kinds value).
func (m *Metrics) Connections(kind string, f func() int) {
	m.GaugeFunc(NameConnections, "Live SIP over TLS connections, by kind.", prometheus.Labels{"kind": kind}, func() float64 { return float64(f()) })
}

// Relay exposes a relay's allocations: live now, made and refused since
// it started.
func (m *Metrics) Relay(stats func() (live int, made, refused uint64)) {
	m.GaugeFunc(NameRelayAllocs, "Live TURN allocations of the node's relay.", nil,
		func() float64 { l, _, _ := stats(); return float64(l) })
	m.CounterFunc(NameRelayAllocTotal, "TURN allocations made by the node's relay.",
		func() float64 { _, n, _ := stats(); return float64(n) })
	m.CounterFunc(NameRelayRefused, "TURN allocations refused by the per-user cap.",
		func() float64 { _, _, r := stats(); return float64(r) })
}

// Registered counts a successful registration of kind.
func (m *Metrics) Registered(kind string) {
	if m == nil {
		return
	}
	if c, ok := m.registrations[kind]; ok {
		c.Inc()
	}
}

// MessageAccepted counts a MESSAGE answered 200 and the copies of it that
// were stored (0 when every target device took it at once).
func (m *Metrics) MessageAccepted(copies int) {
	if m == nil {
		return
	}
	m.messages["accepted"].Inc()
	m.messages["stored"].Add(float64(copies))
}

// MessageRefused counts a refused MESSAGE by its SIP answer.
func (m *Metrics) MessageRefused(code int) {
	if m == nil {
		return
	}
	m.refused[Refusal(code)].Inc()
}

// Refusal is the reason label of a MESSAGE's SIP refusal code.
func Refusal(code int) string {
	switch code {
	case 400:
		return ReasonBadRequest
	case 401, 407:
		return ReasonUnauthenticated
	case 403:
		return ReasonForbidden
	case 404:
		return ReasonNotFound
	case 413, 513:
		return ReasonTooLarge
	case 503:
		return ReasonRateLimited
	case 480:
		return ReasonUnavailable
	case 488:
		return ReasonNotAcceptable
	case 500:
		return ReasonInternal
	}
	return ReasonOther
}

// Delivered counts a copy a device took, accepted at accepted.
func (m *Metrics) Delivered(accepted time.Time) {
	if m == nil {
		return
	}
	m.messages["delivered"].Inc()
	if !accepted.IsZero() {
		m.delivery.Observe(max(time.Since(accepted).Seconds(), 0))
	}
}

// CallStarted counts a call the node begins to route.
func (m *Metrics) CallStarted() {
	if m == nil {
		return
	}
	m.callsStarted.Inc()
}

// CallFinal counts a call's final answer to the caller: answered, or
// failed by cause. A code of 0 (no answer sent) counts as other.
func (m *Metrics) CallFinal(code int) {
	if m == nil {
		return
	}
	if code >= 200 && code < 300 {
		m.callsAnswered.Inc()
		return
	}
	m.callsFailed[CallCause(code)].Inc()
}

// CallCause is the cause label of a final non-2xx answer to an INVITE.
func CallCause(code int) string {
	switch {
	case code == 486 || code == 600:
		return CauseBusy
	case code == 603:
		return CauseDeclined
	case code == 408:
		return CauseNoAnswer
	case code == 487:
		return CauseCancelled
	case code == 480:
		return CauseOffline
	case code == 403 || code == 404:
		return CauseForbidden
	case code == 503:
		return CauseRateLimited
	case code >= 400 && code < 500:
		return CauseClient
	case code >= 500 && code < 600:
		return CauseServer
	}
	return CauseOther
}

// AuthFailed counts a wrong password of kind (an AuthKinds value).
func (m *Metrics) AuthFailed(kind string) {
	if m == nil {
		return
	}
	if c, ok := m.authFailures[kind]; ok {
		c.Inc()
	}
}

// AuthRefused counts an attempt of kind refused in state (a RefusedStates
// value) before its password was looked at.
func (m *Metrics) AuthRefused(kind, state string) {
	if m == nil {
		return
	}
	if c, ok := m.authRefused[[2]string{kind, state}]; ok {
		c.Inc()
	}
}

// StoreOp records the latency of a store operation since start.
func (m *Metrics) StoreOp(op string, start time.Time) {
	if m == nil {
		return
	}
	o, ok := m.storeLatency[op]
	if !ok {
		o = m.storeLatency["other"]
	}
	o.Observe(time.Since(start).Seconds())
}

// BusOp records the latency of an operation on the bus between nodes
// (publish, request, deliver) since start.
func (m *Metrics) BusOp(op string, start time.Time) {
	if m == nil {
		return
	}
	o, ok := m.busLatency[op]
	if !ok {
		o = m.busLatency["other"]
	}
	o.Observe(time.Since(start).Seconds())
}

// Queue sets the backlog read from the store.
func (m *Metrics) Queue(copies, bytes int64, oldest time.Time) {
	if m == nil {
		return
	}
	m.pending.Set(float64(copies))
	m.pendingBytes.Set(float64(bytes))
	age := 0.0
	if !oldest.IsZero() {
		age = max(time.Since(oldest).Seconds(), 0)
	}
	m.pendingOldest.Set(age)
}
