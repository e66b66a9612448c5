package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/health"
	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/server/proxy"
	"github.com/phonex/phonex/internal/server/relay"
	"github.com/phonex/phonex/internal/store"
)

// What an operator's monitoring sees of a node: Prometheus metrics, and
// /healthz and /readyz for a load balancer, on a listener of their own
// (metrics_addr), loopback by default and never the API's port, so a
// scrape needs no device certificate and the API's clients cannot read it.

// queueEvery is how often the backlog gauges are read from the store.
const queueEvery = 15 * time.Second

// initOps gives the node its metrics and readiness checks, and times the
// store's operations. Open calls it before anything uses the store.
func (n *Node) initOps() {
	n.metrics = metrics.New()
	n.st = timedStore{Store: n.st, m: n.metrics}
	n.checks.Add("store", n.st.Ping)
	// Alert rules see readiness through the scrape, which a load
	// balancer's /readyz probe does not leave behind.
	n.metrics.GaugeFunc(metrics.NameReady, "1 when every readiness check (store, bus) passes at scrape time, else 0.", nil, func() float64 {
		if n.checks.Ready(context.Background()) != nil {
			return 0
		}
		return 1
	})
}

// Metrics is the node's metrics, for hooks in the parts composed here
// (the bus times its operations with BusOp).
func (n *Node) Metrics() *metrics.Metrics { return n.metrics }

// Readiness is the node's readiness checks: a part whose loss makes the
// node unable to serve (the bus) adds its check here.
func (n *Node) Readiness() *health.Checks { return &n.checks }

// OpsHandler serves /metrics, /healthz and /readyz.
func (n *Node) OpsHandler() http.Handler { return health.Handler(&n.checks, n.metrics.Handler()) }

// listenOps opens the metrics listener, or none when metrics_addr is off.
func listenOps(cfg Config) (net.Listener, error) {
	if cfg.MetricsAddr == "" || cfg.MetricsAddr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	return ln, nil
}

// ServeOps serves OpsHandler on ln (plain HTTP: it carries no secret and
// belongs on loopback or a monitoring network) until ctx ends, and keeps
// the backlog gauges fresh.
func (n *Node) ServeOps(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: n.OpsHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go n.pollQueue(ctx)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return nil
}

// pollQueue reads the backlog from the store now and every queueEvery.
func (n *Node) pollQueue(ctx context.Context) {
	t := time.NewTicker(queueEvery)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, health.CheckTimeout)
		q, err := n.st.QueueDepth(qctx)
		cancel()
		if err == nil {
			n.metrics.Queue(q.Deliveries, q.Bytes, q.Oldest)
		} else if ctx.Err() == nil {
			n.log.Warn("queue depth not read", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// relayMetrics exposes a running relay's counters.
func (n *Node) relayMetrics(s *relay.Server) {
	n.metrics.Relay(func() (live int, made, refused uint64) {
		st := s.Stats()
		return st.Allocations, st.Allocated, st.Refused
	})
}

// authKind is the metrics kind of a password check against subjects.
func authKind(subjects []subject) string {
	if len(subjects) > 0 && subjects[0].kind == store.SubjectLogin {
		return metrics.AuthLogin
	}
	return metrics.AuthUnlock
}

func authKindOf(s store.Subject) string {
	if s == store.SubjectLogin {
		return metrics.AuthLogin
	}
	return metrics.AuthUnlock
}

// refusedState is the metrics state of an attempt refused with e.
func refusedState(e *api.Error) string {
	switch e.Code {
	case api.CodeLocked:
		return metrics.RefusedLocked
	case api.CodeHumanCheck:
		return metrics.RefusedHumanCheck
	}
	return metrics.RefusedThrottled
}

// timedStore records the latency of the store operations on the message,
// login and routing paths; the rest pass through untimed.
type timedStore struct {
	store.Store
	m *metrics.Metrics
}

func (s timedStore) EnqueueMessage(ctx context.Context, m store.Message, targets []store.Target, quota int64) (int64, error) {
	defer s.m.StoreOp("enqueue", time.Now())
	return s.Store.EnqueueMessage(ctx, m, targets, quota)
}

func (s timedStore) Pending(ctx context.Context, deviceID int64, limit int) ([]store.Delivery, error) {
	defer s.m.StoreOp("pending", time.Now())
	return s.Store.Pending(ctx, deviceID, limit)
}

func (s timedStore) Delivered(ctx context.Context, seq int64) error {
	defer s.m.StoreOp("delivered", time.Now())
	return s.Store.Delivered(ctx, seq)
}

func (s timedStore) TryAttempt(ctx context.Context, now time.Time, subjects []store.AttemptSubject, judge func([]store.Attempts) error) ([]store.Attempts, error) {
	defer s.m.StoreOp("attempt", time.Now())
	return s.Store.TryAttempt(ctx, now, subjects, judge)
}

func (s timedStore) Account(ctx context.Context, name string) (store.Account, error) {
	defer s.m.StoreOp("account", time.Now())
	return s.Store.Account(ctx, name)
}

func (s timedStore) DeviceByHandle(ctx context.Context, handle string) (store.Device, error) {
	defer s.m.StoreOp("device", time.Now())
	return s.Store.DeviceByHandle(ctx, handle)
}

func (s timedStore) RoutingGeneration(ctx context.Context) (int64, error) {
	defer s.m.StoreOp("routing", time.Now())
	return s.Store.RoutingGeneration(ctx)
}

func (s timedStore) ActiveDevices(ctx context.Context, accountID int64) ([]store.DeviceRef, error) {
	defer s.m.StoreOp("routing", time.Now())
	return s.Store.ActiveDevices(ctx, accountID)
}

func (s timedStore) HasContact(ctx context.Context, owner, contact string) (bool, error) {
	defer s.m.StoreOp("contacts", time.Now())
	return s.Store.HasContact(ctx, owner, contact)
}

func (s timedStore) TakePrekey(ctx context.Context, deviceID int64, kind string, consume bool) (store.Prekey, error) {
	defer s.m.StoreOp("keys", time.Now())
	return s.Store.TakePrekey(ctx, deviceID, kind, consume)
}

func (s timedStore) Ping(ctx context.Context) error {
	defer s.m.StoreOp("ping", time.Now())
	return s.Store.Ping(ctx)
}

func (s timedStore) QueueDepth(ctx context.Context) (store.Queue, error) {
	defer s.m.StoreOp("queue", time.Now())
	return s.Store.QueueDepth(ctx)
}

// startOpsLenient starts the metrics listener for phonexd serve and
// returns its line for the start-up report. A listener that cannot start
// (its port taken by another node on the machine) is reported and the node
// serves without it: devices matter more than the scrape.
func (n *Node) startOpsLenient(ctx context.Context) string {
	ln, err := listenOps(n.cfg)
	if err != nil {
		n.log.Error("metrics listener not started", "err", err)
		return "metrics: not running (" + err.Error() + ")"
	}
	if ln == nil {
		return "metrics: off"
	}
	go func() {
		if err := n.ServeOps(ctx, ln); err != nil {
			n.log.Error("metrics listener stopped", "err", err)
		}
	}()
	return fmt.Sprintf("metrics: http://%s/metrics (and /healthz, /readyz)", ln.Addr())
}

func sipRefusedState(r *proxy.Refusal) string {
	if r.RetryAfter > 0 {
		return metrics.RefusedThrottled
	}
	return metrics.RefusedLocked
}
