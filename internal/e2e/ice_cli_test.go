package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/ice/iceturn"
)

// pathEvents returns the first path event's path and the end-of-call
// statistics' path and ice flag of a finished phonex process.
func pathEvents(t *testing.T, p *proc) (path, endPath string, endICE bool) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	for sc.Scan() {
		var e struct {
			Event string `json:"event"`
			Path  string `json:"path"`
			Stats *struct {
				Path string `json:"path"`
				ICE  bool   `json:"ice"`
			} `json:"stats"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch {
		case e.Event == "path" && path == "":
			path = e.Path
		case e.Event == "ended" && e.Stats != nil:
			endPath, endICE = e.Stats.Path, e.Stats.ICE
		}
	}
	return path, endPath, endICE
}

// TestDirectCallICE: phonex call/answer --direct negotiate ICE on
// loopback and report the host path; --relay sends the media through a
// TURN server with REST credentials and reports relay; --no-ice on one
// side falls back to the plain c=/m= address. The tone crosses each time.
func TestDirectCallICE(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "e2e-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, err := srv.Servers("alpha")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	tone := filepath.Join(tmp, "tone440.wav")
	writeTone(t, tone, 16000, 440, 4)
	relay := []string{"--relay", "--ice-server", servers.URLs[0], "--turn-user", servers.Username}
	for i, tt := range []struct {
		name           string
		caller, callee []string
		path           string
		ice            bool
	}{
		{"host", nil, nil, "host", true},
		{"caller forces the relay", relay, nil, "relay", true},
		{"callee without ICE", nil, []string{"--no-ice"}, "host", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := freeport.Port(t)
			rec := filepath.Join(tmp, fmt.Sprintf("rec%d.wav", i))
			ans := startPhonex(t, append([]string{"answer", "--direct", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--record", rec,
				"--json", "--zrtp-cache", filepath.Join(tmp, "zb")}, tt.callee...)...)
			ans.waitEvent(t, "listening", 30*time.Second)
			c := startPhonexEnv(t, []string{"PHONEX_TURN_PASSWORD=" + servers.Password},
				append([]string{"call", fmt.Sprintf("sip:x@127.0.0.1:%d", port), "--direct", "--play", tone,
					"--json", "--zrtp-cache", filepath.Join(tmp, "za")}, tt.caller...)...)
			talk(t, c, ans, 3*time.Second)
			a, b := c.wait(t, 20*time.Second), ans.wait(t, 20*time.Second)
			if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
				t.Fatalf("SAS %q and %q", a["secure"].SAS, b["secure"].SAS)
			}
			for who, p := range map[string]*proc{"caller": c, "callee": ans} {
				path, endPath, endICE := pathEvents(t, p)
				if path != tt.path || endPath != tt.path || endICE != tt.ice {
					t.Errorf("%s: path event %q, end stats path %q ice %v; want %q ice %v\n%s", who, path, endPath, endICE, tt.path, tt.ice, p.out.String())
				}
			}
			if f := dominant(t, rec); f < 435 || f > 445 {
				t.Errorf("recorded %.1f Hz, want 440", f)
			}
		})
	}

	// --relay without a relay is refused before anything is sent.
	if r := run(t, nil, "phonex", "call", "sip:x@127.0.0.1:9", "--direct", "--relay", "--zrtp-cache", filepath.Join(tmp, "za")); r.code == 0 {
		t.Fatalf("--relay without --ice-server: exit 0\n%s", r.out)
	}
}
