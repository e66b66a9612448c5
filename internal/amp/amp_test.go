package amp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/stp"
	"github.com/phonex/phonex/internal/wire"
)

var when = time.UnixMilli(1_700_000_000_000)

func samples() []Message {
	return []Message{
		&Text{Version: 1, Body: "hello"},
		&Text{Version: 1, Body: ""},
		&Text{Version: 2, Body: "Ahoj, jak se máš?", Nonce: -5},
		&Text{Version: 2, Body: "", Nonce: 0},
		&Notification{Type: NotifyFileArrived, Time: when, FileArrived: &FileArrived{TransferID: "t-1", FileCount: 2}},
		&Notification{Type: NotifyMissedCall, Time: when, MissedCall: &MissedCall{Caller: "alice@example.org/phone", CallID: "c1"}},
		&Notification{Type: NotifyNewCertificate, Time: when, NewCertificate: &NewCertificate{Device: "alice@example.org/phone", CertificateHash: bytes.Repeat([]byte{7}, 32), NotBefore: when}},
		&Receipt{Type: ReceiptDelivered, Nonces: []int32{1}, Time: when},
		&Receipt{Type: ReceiptRead, Nonces: []int32{0, -1, 1 << 30}, Time: when},
	}
}

func TestRoundTrip(t *testing.T) {
	d := NewDispatcher()
	for _, m := range samples() {
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		got, err := d.Decode(m.Kind(), b)
		if err != nil {
			t.Fatalf("%v: %v", m.Kind(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip %v:\n got %+v\nwant %+v", m.Kind(), got, m)
		}
	}
}

func TestTextV2IsAMPSimple(t *testing.T) {
	b, err := (&Text{Version: 2, Body: "hi", Nonce: 42}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var w wire.AMPSimple
	if err := proto.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Message))
	if err != nil {
		t.Fatalf("message is not gzip: %v", err)
	}
	var out bytes.Buffer
	out.ReadFrom(zr)
	if out.String() != "hi" || w.GetNonce() != 42 {
		t.Errorf("AMPSimple %q nonce %d", out.String(), w.GetNonce())
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestDecodeErrors(t *testing.T) {
	d := NewDispatcher()
	bomb := gzipBytes(make([]byte, 64<<20)) // 64 MiB of zeros in ~64 KiB
	amp := func(msg []byte, nonce *int32) []byte {
		b, _ := proto.Marshal(&wire.AMPSimple{Message: msg, Nonce: nonce})
		return b
	}
	cases := []struct {
		name string
		kind Kind
		in   []byte
		want error
	}{
		{"unknown kind", Kind{9, 1}, nil, ErrUnknownType},
		{"text v1 not UTF-8", TextV1, []byte{0xff}, ErrMalformed},
		{"text v1 too long", TextV1, make([]byte, MaxTextSize+1), ErrTooLarge},
		{"text v2 garbage", TextV2, []byte{0xff}, ErrMalformed},
		{"text v2 no nonce", TextV2, amp(gzipBytes([]byte("x")), nil), ErrMalformed},
		{"text v2 not gzip", TextV2, amp([]byte("plain"), proto.Int32(1)), ErrMalformed},
		{"text v2 truncated gzip", TextV2, amp(gzipBytes([]byte("hello"))[:10], proto.Int32(1)), ErrMalformed},
		{"text v2 gzip bomb", TextV2, amp(bomb, proto.Int32(1)), ErrTooLarge},
		{"text v2 not UTF-8", TextV2, amp(gzipBytes([]byte{0xff}), proto.Int32(1)), ErrMalformed},
		{"payload too large", TextV1, make([]byte, MaxPayload+1), ErrTooLarge},
		{"notification empty", NotificationV1, nil, ErrMalformed},
		{"notification mismatched", NotificationV1, mustMarshal(&wire.AMPNotification{NotificationType: proto.Int32(NotifyMissedCall), FileArrived: &wire.FileArrived{}}), ErrMalformed},
		{"receipt empty", ReceiptV1, mustMarshal(&wire.AMPReceipt{ReceiptType: proto.Int32(ReceiptRead)}), ErrMalformed},
		{"receipt bad type", ReceiptV1, mustMarshal(&wire.AMPReceipt{ReceiptType: proto.Int32(7), Nonces: []int32{1}}), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := d.Decode(c.kind, c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := (&Text{Version: 2, Body: strings.Repeat("a", MaxTextSize+1)}).Marshal(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("marshal long text: %v", err)
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestBestProtocol(t *testing.T) {
	cases := []struct {
		local, remote []string
		want          stp.Protocol
		err           error
	}{
		{Capabilities(true), Capabilities(true), stp.Protocol{Type: stp.TypeRatchet, Version: 1}, nil},
		{Capabilities(false), Capabilities(true), stp.SimpleV3, nil},
		{Capabilities(true), []string{CapMessaging2, CapMessaging21}, stp.SimpleV2, nil},
		{Capabilities(true), []string{CapMessaging2}, stp.SimpleV1, nil},
		{Capabilities(true), []string{"2.0", "3.2.1"}, stp.Protocol{}, ErrNoCommonProtocol},
		{Capabilities(true), nil, stp.Protocol{}, ErrNoCommonProtocol}, // messaging 1.0: S/MIME
	}
	for _, c := range cases {
		got, _, err := BestProtocol(c.local, c.remote)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("BestProtocol(%q, %q) = %v, %v; want %v, %v", c.local, c.remote, got, err, c.want, c.err)
		}
	}
}

func TestConfidential(t *testing.T) {
	for k, want := range map[Kind]bool{TextV1: true, TextV2: true, {TypeCommand, 1}: true, {99, 1}: true, NotificationV1: false, ReceiptV1: false} {
		if k.Confidential() != want {
			t.Errorf("%v.Confidential() = %v, want %v", k, !want, want)
		}
	}
}
