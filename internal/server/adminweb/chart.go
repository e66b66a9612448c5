package adminweb

import (
	"bytes"
	"fmt"
	"html"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/store"
)

// sample is the node's figures at one time.
type sample struct {
	At     time.Time
	Counts store.NodeCounts
	Live   server.Live
}

// sampler keeps the last samples in a ring, for the charts.
type sampler struct {
	mu   sync.Mutex
	ring []sample
	next int
	full bool
}

func newSampler(n int) *sampler { return &sampler{ring: make([]sample, n)} }

func (s *sampler) add(x sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring[s.next] = x
	s.next = (s.next + 1) % len(s.ring)
	if s.next == 0 {
		s.full = true
	}
}

// all returns the samples oldest first.
func (s *sampler) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.full {
		return append([]sample(nil), s.ring[:s.next]...)
	}
	return append(append([]sample(nil), s.ring[s.next:]...), s.ring[:s.next]...)
}

func (s *sampler) last() (sample, int) {
	a := s.all()
	if len(a) == 0 {
		return sample{}, 0
	}
	return a[len(a)-1], len(a)
}

// counter reads one of the node's metrics counters from a sample.
func counter(name string) func(sample) float64 {
	return func(x sample) float64 { return x.Live.Counters[name] }
}

// series are the figures a chart can show; rate series are counters drawn
// as their increase per minute between samples.
var series = map[string]struct {
	title string
	get   func(sample) float64
	rate  bool
}{
	"accepted":      {"Messages accepted per minute", counter(metrics.NameMessages + "{stage=accepted}"), true},
	"refused":       {"Messages refused per minute", counter(metrics.NameRefused), true},
	"calls-started": {"Calls started per minute", counter(metrics.NameCallsStarted), true},
	"auth-failures": {"Wrong passwords per minute", counter(metrics.NameAuthFailures), true},
	"waiting":       {"Messages waiting", func(x sample) float64 { return float64(x.Counts.MessagesWaiting) }, false},
	"registrations": {"Registered devices", func(x sample) float64 { return float64(x.Live.Registrations) }, false},
	"calls":         {"Active calls", func(x sample) float64 { return float64(x.Live.ActiveCalls) }, false},
	"relay":         {"Relay allocations", func(x sample) float64 { return float64(x.Live.RelayAllocations) }, false},
	"failures":      {"Failed password attempts counted", func(x sample) float64 { return float64(x.Counts.DeviceFailures + x.Counts.LoginFailures) }, false},
}

// svg draws one series as a line chart: fixed size, axis labels, the
// latest value; drawn with presentation attributes only, so the strict
// style policy holds.
func (s *sampler) svg(name string) []byte {
	ser, ok := series[name]
	if !ok {
		name = "waiting"
		ser = series[name]
	}
	pts := s.all()
	type point struct {
		at time.Time
		v  float64
	}
	var vals []point
	for i, x := range pts {
		if !ser.rate {
			vals = append(vals, point{x.At, ser.get(x)})
			continue
		}
		// A counter's increase per minute since the sample before; a
		// restart (a counter going down) starts again from zero.
		if i == 0 {
			continue
		}
		dt := x.At.Sub(pts[i-1].At).Minutes()
		d := ser.get(x) - ser.get(pts[i-1])
		if dt <= 0 || d < 0 {
			d = 0
		}
		if dt > 0 {
			d /= dt
		}
		vals = append(vals, point{x.At, d})
	}
	const w, h, padL, padB, padT = 480.0, 160.0, 48.0, 24.0, 20.0
	max := 1.0
	for _, p := range vals {
		if p.v > max {
			max = p.v
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(ser.title))
	fmt.Fprintf(&b, `<title>%s</title><rect width="%g" height="%g" fill="#ffffff"/>`, html.EscapeString(ser.title), w, h)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, padL, h-padB, w-4, h-padB)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#888"/>`, padL, padT, padL, h-padB)
	fmt.Fprintf(&b, `<text x="4" y="%g" font-size="11" font-family="sans-serif">%.4g</text>`, padT+4, max)
	fmt.Fprintf(&b, `<text x="4" y="%g" font-size="11" font-family="sans-serif">0</text>`, h-padB)
	fmt.Fprintf(&b, `<text x="%g" y="14" font-size="12" font-family="sans-serif">%s</text>`, padL, html.EscapeString(ser.title))
	if len(vals) > 0 {
		span := vals[len(vals)-1].at.Sub(vals[0].at)
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" font-family="sans-serif">last %s, now %.4g</text>`, padL, h-6, span.Round(time.Second), vals[len(vals)-1].v)
		b.WriteString(`<polyline fill="none" stroke="#1565c0" stroke-width="2" points="`)
		for i, p := range vals {
			px := padL
			if len(vals) > 1 {
				px = padL + float64(i)*(w-4-padL)/float64(len(vals)-1)
			}
			py := (h - padB) - p.v/max*(h-padB-padT)
			fmt.Fprintf(&b, "%.1f,%.1f ", px, py)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}
