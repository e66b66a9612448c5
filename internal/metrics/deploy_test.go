package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/phonex/phonex/internal/testpeer"
)

const deployDir = "../../deploy"

// gathered is every family a running node exposes: New's, the live
// connections of each kind and a relay's.
func gathered(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	m := New()
	for _, k := range []string{KindDevice, KindPhone} {
		m.Connections(k, func() int { return 0 })
	}
	m.Relay(func() (int, uint64, uint64) { return 0, 0, 0 })
	m.GaugeFunc(NameReady, "readiness", nil, func() float64 { return 1 })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

var (
	metricName = regexp.MustCompile(`\b(?:phonex|process|go)_[a-zA-Z0-9_]+`)
	selector   = regexp.MustCompile(`\b((?:phonex|process|go)_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"`)
)

// checkExpr reports a metric name the registry does not have, or an
// exact label value no series of it carries.
func checkExpr(t *testing.T, where, expr string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, p := range exprProblems(expr, fams) {
		t.Errorf("%s: %s", where, p)
	}
}

func exprProblems(expr string, fams map[string]*dto.MetricFamily) []string {
	var out []string
	family := func(name string) *dto.MetricFamily {
		if f := fams[name]; f != nil {
			return f
		}
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && strings.HasSuffix(name, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
				return f
			}
		}
		return nil
	}
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 && !strings.Contains(expr, "up{") {
		out = append(out, fmt.Sprintf("no metric in %q", expr))
	}
	for _, name := range names {
		if family(name) == nil {
			out = append(out, name+" is not a metric of phonexd")
		}
	}
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		f := family(sel[1])
		if f == nil {
			continue
		}
		for _, mt := range matcher.FindAllStringSubmatch(sel[2], -1) {
			label, value := mt[1], mt[2]
			if label == "job" || label == "instance" {
				continue // added by Prometheus
			}
			if !hasLabel(f, label, value) {
				out = append(out, fmt.Sprintf("no series of %s has %s=%q", sel[1], label, value))
			}
		}
	}
	return out
}

func hasLabel(f *dto.MetricFamily, label, value string) bool {
	for _, m := range f.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// TestDashboardMetricsExist: every query of the Grafana dashboard names
// metrics (and label values) the node exposes, so the two cannot drift.
func TestDashboardMetricsExist(t *testing.T) {
	fams := gathered(t)
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "phonex.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard without panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, fams)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertMetricsExist: the same for the alert rules, and every alert the
// operations guide promises is there.
func TestAlertMetricsExist(t *testing.T) {
	fams := gathered(t)
	b, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("alerts YAML: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			seen[r.Alert] = true
			checkExpr(t, "alert "+r.Alert, r.Expr, fams)
		}
	}
	for _, want := range []string{"PhonexdNotReady", "PhonexDeliveryLatencyHigh", "PhonexQueueGrowing", "PhonexLoginFailuresSpike",
		"PhonexStoreSlow", "PhonexBusSlow"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestAlertRulesPromtool: Prometheus' own checker accepts the rules
// (PromQL syntax, durations, templates).
func TestAlertRulesPromtool(t *testing.T) {
	promtool := testpeer.Require(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", filepath.Join(deployDir, "prometheus", "alerts.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestDriftCaught: the check itself notices an unknown name or label value.
func TestDriftCaught(t *testing.T) {
	fams := gathered(t)
	for _, expr := range []string{`rate(phonex_messages_sent_total[5m])`, `phonex_messages_total{stage="lost"}`} {
		if len(exprProblems(expr, fams)) == 0 {
			t.Errorf("%q passed the check", expr)
		}
	}
}
