package amp

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// Notification types (AMPNotification.notificationType).
const (
	NotifyFileArrived    int32 = 1
	NotifyMissedCall     int32 = 2
	NotifyNewCertificate int32 = 3
)

// Notification is an event for the recipient (AMP type 2 v1). Exactly one
// of the detail fields is set, matching Type. Notifications carry no secret
// and travel in STPSimpleAuth.
type Notification struct {
	Type           int32
	Time           time.Time
	FileArrived    *FileArrived
	MissedCall     *MissedCall
	NewCertificate *NewCertificate
}

// FileArrived: a file transfer waits for the recipient.
type FileArrived struct {
	TransferID string
	FileCount  uint32
}

// MissedCall: a call was not answered.
type MissedCall struct {
	Caller string
	CallID string
}

// NewCertificate: a device has a new certificate; peers re-fetch it.
type NewCertificate struct {
	Device          string
	CertificateHash []byte // SHA-256 of the DER
	NotBefore       time.Time
}

// Kind implements Message.
func (n *Notification) Kind() Kind { return NotificationV1 }

// Marshal implements Message.
func (n *Notification) Marshal() ([]byte, error) {
	if err := n.check(); err != nil {
		return nil, fmt.Errorf("marshal notification: %w", err)
	}
	w := &wire.AMPNotification{NotificationType: proto.Int32(n.Type), TimeMiliUTC: millis(n.Time)}
	switch {
	case n.FileArrived != nil:
		w.FileArrived = &wire.FileArrived{TransferId: proto.String(n.FileArrived.TransferID), FileCount: proto.Uint32(n.FileArrived.FileCount)}
	case n.MissedCall != nil:
		w.MissedCall = &wire.MissedCall{Caller: proto.String(n.MissedCall.Caller), CallId: proto.String(n.MissedCall.CallID)}
	case n.NewCertificate != nil:
		c := n.NewCertificate
		w.NewCertificate = &wire.NewCertificate{Device: proto.String(c.Device), CertificateHash: c.CertificateHash, NotBeforeMiliUTC: millis(c.NotBefore)}
	}
	return proto.Marshal(w)
}

// check verifies that exactly the detail matching Type is set.
func (n *Notification) check() error {
	set := 0
	for _, p := range []bool{n.FileArrived != nil, n.MissedCall != nil, n.NewCertificate != nil} {
		if p {
			set++
		}
	}
	ok := set == 1 && (n.Type == NotifyFileArrived && n.FileArrived != nil ||
		n.Type == NotifyMissedCall && n.MissedCall != nil ||
		n.Type == NotifyNewCertificate && n.NewCertificate != nil)
	if !ok {
		return fmt.Errorf("notification type %d does not match its details: %w", n.Type, ErrMalformed)
	}
	return nil
}

func decodeNotification(b []byte) (Message, error) {
	var w wire.AMPNotification
	if err := proto.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("notification: %v: %w", err, ErrMalformed)
	}
	n := &Notification{Type: w.GetNotificationType(), Time: fromMillis(w.TimeMiliUTC)}
	if f := w.FileArrived; f != nil {
		n.FileArrived = &FileArrived{TransferID: f.GetTransferId(), FileCount: f.GetFileCount()}
	}
	if c := w.MissedCall; c != nil {
		n.MissedCall = &MissedCall{Caller: c.GetCaller(), CallID: c.GetCallId()}
	}
	if c := w.NewCertificate; c != nil {
		n.NewCertificate = &NewCertificate{Device: c.GetDevice(), CertificateHash: c.CertificateHash, NotBefore: fromMillis(c.NotBeforeMiliUTC)}
	}
	if err := n.check(); err != nil {
		return nil, err
	}
	return n, nil
}

// Receipt types (AMPReceipt.receiptType).
const (
	ReceiptDelivered int32 = 1
	ReceiptRead      int32 = 2
)

// MaxReceiptNonces bounds the nonces one receipt acknowledges.
const MaxReceiptNonces = 4096

// Receipt acknowledges the listed text nonces as delivered or read (AMP
// type 3 v1). Receipts carry no secret and travel in STPSimpleAuth.
type Receipt struct {
	Type   int32
	Nonces []int32
	Time   time.Time
}

// Kind implements Message.
func (r *Receipt) Kind() Kind { return ReceiptV1 }

// Marshal implements Message.
func (r *Receipt) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("marshal receipt: %w", err)
	}
	return proto.Marshal(&wire.AMPReceipt{ReceiptType: proto.Int32(r.Type), Nonces: r.Nonces, TimeMiliUTC: millis(r.Time)})
}

func (r *Receipt) check() error {
	if r.Type != ReceiptDelivered && r.Type != ReceiptRead {
		return fmt.Errorf("receipt type %d: %w", r.Type, ErrMalformed)
	}
	if len(r.Nonces) == 0 {
		return fmt.Errorf("receipt acknowledges nothing: %w", ErrMalformed)
	}
	if len(r.Nonces) > MaxReceiptNonces {
		return fmt.Errorf("receipt of %d nonces: %w", len(r.Nonces), ErrTooLarge)
	}
	return nil
}

func decodeReceipt(b []byte) (Message, error) {
	var w wire.AMPReceipt
	if err := proto.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("receipt: %v: %w", err, ErrMalformed)
	}
	r := &Receipt{Type: w.GetReceiptType(), Nonces: w.Nonces, Time: fromMillis(w.TimeMiliUTC)}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

func millis(t time.Time) *uint64 {
	if t.IsZero() {
		return nil
	}
	return proto.Uint64(uint64(t.UnixMilli()))
}

func fromMillis(ms *uint64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(*ms))
}
