package server

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestGatherCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "phonex_messages_total", Help: "h"}, []string{"stage"})
	calls := prometheus.NewCounter(prometheus.CounterOpts{Name: "phonex_calls_started_total", Help: "h"})
	pending := prometheus.NewGauge(prometheus.GaugeOpts{Name: "phonex_pending_deliveries", Help: "h"})
	reg.MustRegister(msgs, calls, pending)
	msgs.WithLabelValues("accepted").Add(3)
	msgs.WithLabelValues("stored").Add(5)
	calls.Inc()
	pending.Set(7)
	got := gatherCounters(reg)
	for k, want := range map[string]float64{
		"phonex_messages_total":                 8,
		"phonex_messages_total{stage=accepted}": 3,
		"phonex_messages_total{stage=stored}":   5,
		"phonex_calls_started_total":            1,
	} {
		if got[k] != want {
			t.Errorf("%s = %g, want %g", k, got[k], want)
		}
	}
	if _, ok := got["phonex_pending_deliveries"]; ok {
		t.Error("a gauge is among the counters")
	}
}
