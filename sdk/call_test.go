package sdk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCallEventJSON: the flat form 'phonex call --json' prints, with an
// "event" key.
func TestCallEventJSON(t *testing.T) {
	b, err := json.Marshal(CallEvent{Type: CallEnded, Time: time.Unix(0, 0), Reason: "bye", Stats: &CallStats{PacketsSent: 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"event":"ended"`, `"reason":"bye"`, `"packets_sent":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}

func TestParseAlgorithms(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		err  error
	}{
		{"", 0, nil},
		{"X255,DH3k", 2, nil},
		{" B32 ", 1, nil},
		{"X255,,DH3k", 0, ErrAlgorithm},
		{"TOOLONG", 0, ErrAlgorithm},
	} {
		got, err := ParseAlgorithms(c.in)
		if !errors.Is(err, c.err) || len(got) != c.want {
			t.Errorf("ParseAlgorithms(%q) = %v, %v", c.in, got, err)
		}
	}
}
