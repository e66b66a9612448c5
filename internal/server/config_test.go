package server

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigRoundTrip(t *testing.T) {
	c := Defaults("/d")
	c.Domain = "example.org"
	c.Hosts = []string{"node1.example.org", "10.0.0.1"}
	c.CertValidity = 90 * 24 * time.Hour
	c.DeviceAttempts.Free = 4
	c.LoginAttempts.HumanAfter = 5
	c.LoginPoWBits = 16
	c.KDFMinLogN = 17
	c.MessageStoreFirst = true
	back, err := ParseConfig("/d", c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.Domain != c.Domain || strings.Join(back.Hosts, ",") != strings.Join(c.Hosts, ",") || back.CertValidity != c.CertValidity || back.DeviceAttempts != c.DeviceAttempts || back.AccountAttempts != c.AccountAttempts ||
		back.LoginAttempts != c.LoginAttempts || back.LoginPoWBits != c.LoginPoWBits || back.KDFMinLogN != c.KDFMinLogN || !back.MessageStoreFirst {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, in := range []string{
		"domain = Not A Domain",
		"nonsense",
		"colour = blue",
		"cert_validity = forever",
		"cert_validity = 1s",
		"api_addr = nowhere",
		"log_level = loud",
		"device_attempts_free = 0",
		"device_attempts_lock = 2\ndevice_attempts_free = 3",
		"login_attempts_human = 1",
		"login_attempts_human = 20",
		"login_pow_bits = 0",
		"login_pow_bits = 40",
		"kdf_min_log_n = 10",
	} {
		if _, err := ParseConfig("/d", []byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(Defaults("/d").Encode())
	f.Add([]byte("domain = a.b\nhosts = x, y\n# c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("/d", b)
		if err != nil {
			return
		}
		enc := c.Encode()
		back, err := ParseConfig("/d", enc)
		if err != nil {
			t.Fatalf("encode of a valid config does not parse: %v", err)
		}
		if !reflect.DeepEqual(back, c) || !bytes.Equal(back.Encode(), enc) {
			t.Fatalf("re-encoded config parses to %+v, want %+v", back, c)
		}
	})
}
