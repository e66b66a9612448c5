package server

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gatherCounters sums the counters of a Prometheus registry by metric name
// and by name{label=value} for each of their labels, the form the admin
// panel's live state reads (Live.Counters). Other metric types are left
// out; nil when nothing can be gathered.
func gatherCounters(g prometheus.Gatherer) map[string]float64 {
	fams, err := g.Gather()
	if err != nil && len(fams) == 0 {
		return nil
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			out[f.GetName()] += v
			for _, l := range m.GetLabel() {
				out[f.GetName()+"{"+l.GetName()+"="+l.GetValue()+"}"] += v
			}
		}
	}
	return out
}
