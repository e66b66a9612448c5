package server

import "testing"

func TestPhoneAddr(t *testing.T) {
	for _, c := range []struct{ sip, phone, want string }{
		{"127.0.0.1:5061", "", "127.0.0.1:5062"},
		{"127.0.0.1:0", "", "127.0.0.1:0"},
		{"[::1]:5061", "", "[::1]:5062"},
		{"0.0.0.0:5061", "192.0.2.7:5070", "192.0.2.7:5070"},
		{"127.0.0.1:5061", PhonesOff, ""},
		{"127.0.0.1:65535", "", ""},
	} {
		cfg := Defaults(t.TempDir())
		cfg.SIPAddr, cfg.SIPPhoneAddr = c.sip, c.phone
		if got := cfg.PhoneAddr(); got != c.want {
			t.Errorf("sip_addr %s sip_phone_addr %q: phone port %q, want %q", c.sip, c.phone, got, c.want)
		}
	}
	// The setting survives the configuration file.
	cfg := Defaults("d")
	cfg.SIPPhoneAddr = "127.0.0.1:6000"
	back, err := ParseConfig("d", cfg.Encode())
	if err != nil || back.SIPPhoneAddr != "127.0.0.1:6000" {
		t.Fatalf("round trip: %q %v", back.SIPPhoneAddr, err)
	}
	cfg.SIPPhoneAddr = "nonsense"
	if _, err := ParseConfig("d", cfg.Encode()); err == nil {
		t.Fatal("a phone address without a port was accepted")
	}
}
