package operator

import (
	"testing"
)

// FuzzPolicyValue: values arrive from the panel's forms and the command
// line. Every key either refuses a value with ErrBadValue or accepts it,
// and an accepted value's canonical form parses to the same policy.
func FuzzPolicyValue(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "2.5", "NaN", "Inf", "1e400", "90s", "-5m", "24h1ns", "9223372036854775807", "0x10", " 1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, k := range Keys {
			var p Policy
			if err := k.parse(&p, v); err != nil {
				continue
			}
			canon := k.get(p)
			var q Policy
			if err := k.parse(&q, canon); err != nil || q != p {
				t.Fatalf("%s=%q: canonical %q parses to %+v, %v", k.Name, v, canon, q, err)
			}
		}
	})
}

// FuzzGroupName: what checkGroupName accepts is safe unquoted in commands,
// URLs and the audit log.
func FuzzGroupName(f *testing.F) {
	for _, s := range []string{"ops", "-x", "a b", "a/b", "ä", "a.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkGroupName(s) != nil {
			return
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}
