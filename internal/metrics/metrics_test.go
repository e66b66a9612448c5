package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNilIsNoop(t *testing.T) {
	var m *Metrics
	m.Registered(KindDevice)
	m.MessageAccepted(2)
	m.MessageRefused(403)
	m.Delivered(time.Now())
	m.CallStarted()
	m.CallFinal(486)
	m.AuthFailed(AuthLogin)
	m.AuthRefused(AuthSIP, RefusedLocked)
	m.StoreOp("enqueue", time.Now())
	m.BusOp("publish", time.Now())
	m.Queue(1, 2, time.Now())
	m.Connections(KindPhone, func() int { return 1 })
}

func TestHooksMove(t *testing.T) {
	m := New()
	m.Registered(KindPhone)
	m.Registered("someone@example.org") // not a kind: ignored, never a label
	m.MessageAccepted(3)
	m.Delivered(time.Now().Add(-2 * time.Second))
	m.CallStarted()
	m.CallFinal(200)
	m.CallFinal(486)
	m.CallFinal(0)
	m.AuthFailed(AuthUnlock)
	m.AuthRefused(AuthLogin, RefusedHumanCheck)
	m.StoreOp("no-such-op", time.Now())
	m.Connections(KindDevice, func() int { return 7 })
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"phone registrations", testutil.ToFloat64(m.registrations[KindPhone]), 1},
		{"accepted", testutil.ToFloat64(m.messages["accepted"]), 1},
		{"stored", testutil.ToFloat64(m.messages["stored"]), 3},
		{"delivered", testutil.ToFloat64(m.messages["delivered"]), 1},
		{"answered", testutil.ToFloat64(m.callsAnswered), 1},
		{"busy", testutil.ToFloat64(m.callsFailed[CauseBusy]), 1},
		{"no code", testutil.ToFloat64(m.callsFailed[CauseOther]), 1},
		{"unlock failures", testutil.ToFloat64(m.authFailures[AuthUnlock]), 1},
		{"login human check", testutil.ToFloat64(m.authRefused[[2]string{AuthLogin, RefusedHumanCheck}]), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	out := string(b)
	for _, want := range []string{`phonex_sip_connections{kind="device"} 7`, `phonex_message_delivery_seconds_count 1`,
		`phonex_store_operation_seconds_count{op="other"} 1`, "process_cpu_seconds_total"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the scrape", want)
		}
	}
	if strings.Contains(out, "example.org") {
		t.Error("a user name became a label value")
	}
}

func TestRefusalAndCause(t *testing.T) {
	for code, want := range map[int]string{400: ReasonBadRequest, 403: ReasonForbidden, 404: ReasonNotFound, 480: ReasonUnavailable,
		488: ReasonNotAcceptable, 503: ReasonRateLimited, 513: ReasonTooLarge, 500: ReasonInternal, 599: ReasonOther} {
		if got := Refusal(code); got != want {
			t.Errorf("Refusal(%d) = %s, want %s", code, got, want)
		}
	}
	for code, want := range map[int]string{486: CauseBusy, 600: CauseBusy, 603: CauseDeclined, 408: CauseNoAnswer, 487: CauseCancelled,
		480: CauseOffline, 403: CauseForbidden, 503: CauseRateLimited, 415: CauseClient, 502: CauseServer, 302: CauseOther} {
		if got := CallCause(code); got != want {
			t.Errorf("CallCause(%d) = %s, want %s", code, got, want)
		}
	}
}
