package totp

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"
)

// The test vectors of RFC 6238 Appendix B (8 digits, 30 s steps).
func TestRFC6238Vectors(t *testing.T) {
	seed20 := []byte("12345678901234567890")
	seed32 := []byte("12345678901234567890123456789012")
	seed64 := []byte("1234567890123456789012345678901234567890123456789012345678901234")
	algs := []struct {
		name string
		h    func() hash.Hash
		key  []byte
	}{{"SHA1", sha1.New, seed20}, {"SHA256", sha256.New, seed32}, {"SHA512", sha512.New, seed64}}
	vectors := []struct {
		t    int64
		want [3]string
	}{
		{59, [3]string{"94287082", "46119246", "90693936"}},
		{1111111109, [3]string{"07081804", "68084774", "25091201"}},
		{1111111111, [3]string{"14050471", "67062674", "99943326"}},
		{1234567890, [3]string{"89005924", "91819424", "93441116"}},
		{2000000000, [3]string{"69279037", "90698825", "38618901"}},
		{20000000000, [3]string{"65353130", "77737706", "47863826"}},
	}
	for _, v := range vectors {
		for i, a := range algs {
			got := HOTP(a.h, a.key, Step(time.Unix(v.t, 0), Period), 8)
			if got != v.want[i] {
				t.Errorf("T=%d %s: %s, want %s", v.t, a.name, got, v.want[i])
			}
		}
	}
}

func TestVerify(t *testing.T) {
	key := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	cases := []struct {
		name string
		code string
		err  error
		step int64
	}{
		{"now", Code(key, now), nil, Step(now, Period)},
		{"previous step", Code(key, now.Add(-Period)), nil, Step(now, Period) - 1},
		{"next step", Code(key, now.Add(Period)), nil, Step(now, Period) + 1},
		{"two steps old", Code(key, now.Add(-2*Period)), ErrWrong, 0},
		{"spaces around", " " + Code(key, now) + " ", nil, Step(now, Period)},
		{"too short", "12345", ErrMalformed, 0},
		{"letters", "12345a", ErrMalformed, 0},
		{"eight digits", "94287082", ErrMalformed, 0},
		{"empty", "", ErrMalformed, 0},
	}
	for _, c := range cases {
		step, err := Verify(key, c.code, now)
		if !errors.Is(err, c.err) || (err == nil && step != c.step) {
			t.Errorf("%s: step %d err %v, want %d %v", c.name, step, err, c.step, c.err)
		}
	}
}

func TestURI(t *testing.T) {
	u := URI("PhoneX example.org", "root", []byte("12345678901234567890"))
	for _, want := range []string{"otpauth://totp/PhoneX%20example.org:root?", "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "digits=6", "period=30", "issuer=PhoneX+example.org"} {
		if !strings.Contains(u, want) {
			t.Errorf("%s lacks %s", u, want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	for _, s := range []string{"123456", "", "abcdef", "1234567", " 12345", "０１２３４５"} {
		f.Add(s)
	}
	key := []byte("12345678901234567890")
	f.Fuzz(func(t *testing.T, code string) {
		Verify(key, code, time.Unix(1111111111, 0))
	})
}
