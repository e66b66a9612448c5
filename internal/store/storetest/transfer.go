package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("transfer",
		test{"CopyIntoFreshStore", testCopy},
	)
}

// Populate fills st through the interface with some of every kind of
// state a copy must keep: accounts with secrets and attempt counters,
// codes (one claimed), devices (one revoked), contacts, messages waiting
// (some copies already delivered, so ids have gaps), SIP credentials, a
// phone login, prekeys, spent nonces, file slots and a file.
func Populate(t testing.TB, st store.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Unix(1_900_000_000, 5)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a1 := device(t, st, "alpha@x.org", "a1")
	a2 := device(t, st, "alpha@x.org", "a2")
	b1 := device(t, st, "bravo@x.org", "b1")
	b2 := device(t, st, "bravo@x.org", "b2")
	gone := device(t, st, "bravo@x.org", "old")
	c, err := st.CreateAccount(ctx, "charlie@x.org", now)
	must(err)
	must(st.SetAccountSecrets(ctx, a1.AccountID, store.AccountSecrets{KDF: []byte(`{"logN":15}`), Salts: []byte("salts"), SealedOPRF: []byte{1, 2, 3}, AuthPub: []byte("pub")}))
	must(st.AddCode(ctx, c.ID, []byte("code-c"), now.Add(time.Hour)))
	_, err = st.ClaimCode(ctx, []byte("code-c"), c.ID, "session", now.Add(time.Minute), now)
	must(err)
	must(st.AddCode(ctx, b1.AccountID, []byte("code-b"), now.Add(time.Hour)))
	must(st.SetDeviceStatus(ctx, gone.ID, store.StatusRevoked))
	_, err = st.TryAttempt(ctx, now, []store.AttemptSubject{{Subject: store.SubjectDevice, ID: a2.ID}, {Subject: store.SubjectAccount, ID: a2.AccountID},
		{Subject: store.SubjectLogin, ID: b1.AccountID}}, func([]store.Attempts) error { return nil })
	must(err)
	must(st.AddContact(ctx, a1.AccountID, "bravo@x.org", now))
	must(st.AddContact(ctx, b1.AccountID, "alpha@x.org", now))
	for i := 0; i < 6; i++ {
		tg := []store.Target{{DeviceID: b1.ID, AccountID: b1.AccountID}, {DeviceID: b2.ID, AccountID: b2.AccountID}, {DeviceID: a2.ID, AccountID: a2.AccountID}}
		_, err := st.EnqueueMessage(ctx, store.Message{Sender: "alpha@x.org", SenderDevice: "a1", Recipient: "bravo@x.org", ContentType: "application/x-phonex",
			Body: []byte(fmt.Sprintf("ciphertext %d \x00\xff", i)), Created: now.Add(time.Duration(i) * time.Second)}, tg, 0)
		must(err)
	}
	ds, err := st.Pending(ctx, b1.ID, 2)
	must(err)
	for _, d := range ds {
		must(st.Delivered(ctx, d.Seq))
	}
	must(st.SetSIPCredential(ctx, b2.ID, "bravo-desk", []byte("ha1-desk")))
	must(st.SetPhoneLogin(ctx, b1.ID, "bravo", []byte("ha1-phone")))
	must(st.PutKeys(ctx, b1.ID, store.KeyUpload{Replace: map[string]store.Prekey{"signed": {ID: 4, Data: []byte("spk")}},
		Add: map[string][]store.Prekey{"onetime": {{ID: 1, Data: []byte("k1")}, {ID: 2, Data: []byte("k2")}}}}))
	must(st.SpendNonce(ctx, []byte("nonce"), now.Add(time.Hour), now))
	_, err = st.AddFileSlots(ctx, b1.ID, "alpha@x.org", []store.FileSlot{slot("s1", now.Add(time.Hour)), slot("s2", now.Add(time.Hour))}, 4, now)
	must(err)
	_, err = st.TakeFileSlot(ctx, b1.ID, "alpha@x.org", a1.ID, now.Add(time.Minute), now)
	must(err)
	_, err = st.ProveFileSlot(ctx, b1.ID, "s1", a1.ID, now)
	must(err)
	must(st.CreateFile(ctx, store.StoredFile{ID: "file-1", SenderAccount: a1.AccountID, SenderDevice: a1.ID, RecipientAccount: b1.AccountID, Size: 10,
		Header: []byte("hdr"), State: "complete", Created: now, Expires: now.Add(time.Hour)},
		[]store.SlotUse{{DeviceID: b1.ID, SlotID: "s1", Nonce2: []byte("n2-s1")}}, []store.FileTarget{{DeviceID: b1.ID, SlotID: "s1", Nonce2: []byte("n2-s1")}},
		store.FileLimits{}, now))
	must(st.SetFileOffset(ctx, "file-1", 10))
	must(st.CreateGroup(ctx, "staff", now))
	must(st.AddGroupMember(ctx, "staff", "bravo@x.org"))
	must(st.SetPolicy(ctx, store.PolicyScope{Kind: store.ScopeGroup, Name: "staff"}, "message_rate", "5", now))
	must(st.SetPolicy(ctx, store.PolicyScope{Kind: store.ScopeAccount, Name: "alpha@x.org"}, "max_stored_bytes", "4096", now))
	_, err = st.ProvisionContact(ctx, c.ID, "alpha@x.org", now)
	must(err)
	must(st.AppendAudit(ctx, store.AuditEntry{Time: now, Actor: "cli:root", Action: "user.add", Target: "charlie@x.org", Detail: "ttl=1h"}))
	populateDirectory(t, st, a1, a2, now) // directory.go
	must(st.CreateAdmin(ctx, store.AdminAccount{Name: "root", PassHash: "$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA", TOTPSecret: []byte("12345678901234567890"), Created: now}))
	must(st.CreateAdminSession(ctx, store.AdminSession{IDHash: []byte("session-hash"), Admin: "root", CSRF: []byte("token"), Created: now, Seen: now, AuthAt: now}))
}

// dump reads every row of st.
func dump(t testing.TB, st store.Store) map[string][][]any {
	t.Helper()
	out := map[string][][]any{}
	if err := st.Dump(context.Background(), func(table string, row []any) error {
		out[table] = append(out[table], row)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// CheckCopy checks that to holds what from holds, row for row, and works
// on from there: waiting copies are delivered in order, counters,
// credentials and keys are in place, and new rows get ids past the copied
// ones.
func CheckCopy(t testing.TB, from, to store.Store, counts map[string]int64) {
	t.Helper()
	ctx := context.Background()
	a, b := dump(t, from), dump(t, to)
	for _, tb := range store.CopyTables {
		if !reflect.DeepEqual(a[tb.Name], b[tb.Name]) {
			t.Errorf("table %s differs after the copy:\n from %v\n   to %v", tb.Name, a[tb.Name], b[tb.Name])
		}
		if counts != nil && counts[tb.Name] != int64(len(a[tb.Name])) {
			t.Errorf("table %s: %d rows reported copied, %d in the source", tb.Name, counts[tb.Name], len(a[tb.Name]))
		}
	}
	for _, acct := range []string{"alpha@x.org", "bravo@x.org"} {
		src, _ := from.Account(ctx, acct)
		dst, err := to.Account(ctx, acct)
		if err != nil || !reflect.DeepEqual(src, dst) {
			t.Errorf("account %s: %+v, want %+v (%v)", acct, dst, src, err)
		}
		n1, _ := from.StoredBytes(ctx, src.ID)
		n2, err := to.StoredBytes(ctx, src.ID)
		if err != nil || n1 != n2 || n1 == 0 {
			t.Errorf("account %s holds %d bytes after the copy, %d before (%v)", acct, n2, n1, err)
		}
	}
	b1, err := to.DeviceByName(ctx, "bravo@x.org", "b1")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := from.Pending(ctx, b1.ID, 100)
	got, err := to.Pending(ctx, b1.ID, 100)
	if err != nil || len(got) != 4 || !reflect.DeepEqual(seqs(got), seqs(want)) || !bytes.Equal(got[0].Body, want[0].Body) {
		t.Errorf("pending after the copy: %v, want %v (%v)", seqs(got), seqs(want), err)
	}
	if _, err := to.ClaimCode(ctx, []byte("code-c"), mustAccount(t, to, "charlie@x.org").ID, "other", time.Unix(1_900_000_000, 5).Add(time.Minute), time.Unix(1_900_000_000, 5)); !errors.Is(err, store.ErrCodeBusy) {
		t.Errorf("a code claimed before the copy: %v, want ErrCodeBusy", err)
	}
	if err := to.SpendNonce(ctx, []byte("nonce"), time.Unix(1_900_000_000, 5).Add(time.Hour), time.Unix(1_900_000_000, 5)); !errors.Is(err, store.ErrReplayed) {
		t.Errorf("a nonce spent before the copy: %v, want ErrReplayed", err)
	}
	if k, err := to.TakePrekey(ctx, b1.ID, "onetime", true); err != nil || string(k.Data) != "k1" {
		t.Errorf("one-time key after the copy: %+v %v", k, err)
	}
	if ls, err := to.PhoneLogins(ctx, "bravo"); err != nil || len(ls) != 1 || string(ls[0].HA1) != "ha1-phone" {
		t.Errorf("phone login after the copy: %+v %v", ls, err)
	}
	if f, err := to.StoredFile(ctx, "file-1"); err != nil || f.Offset != 10 || f.Sender != "alpha@x.org/a1" {
		t.Errorf("file after the copy: %+v %v", f, err)
	}
	if ms, err := to.GroupMembers(ctx, "staff"); err != nil || fmt.Sprint(ms) != "[bravo@x.org]" {
		t.Errorf("group after the copy: %v %v", ms, err)
	}
	p1, _ := from.Policies(ctx)
	if p2, err := to.Policies(ctx); err != nil || !reflect.DeepEqual(p1, p2) || len(p2) != 2 {
		t.Errorf("policies after the copy: %+v, want %+v (%v)", p2, p1, err)
	}
	if as, err := to.Audit(ctx, time.Time{}, 10); err != nil || len(as) != 1 || as[0].Action != "user.add" {
		t.Errorf("audit log after the copy: %+v %v", as, err)
	}
	// Ids made after the copy do not collide with copied ones.
	acct, err := to.CreateAccount(ctx, "delta@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := device(t, to, "delta@x.org", "d1")
	m, err := to.EnqueueMessage(ctx, store.Message{Sender: "alpha@x.org", SenderDevice: "a1", Recipient: "delta@x.org", ContentType: "t", Body: []byte("new"),
		Created: time.Now()}, []store.Target{{DeviceID: d.ID, AccountID: acct.ID}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := to.Pending(ctx, d.ID, 1)
	for _, row := range a["accounts"] {
		if row[0].(int64) >= acct.ID {
			t.Errorf("new account id %d not past copied id %d", acct.ID, row[0])
		}
	}
	for _, row := range a["devices"] {
		if row[0].(int64) >= d.ID {
			t.Errorf("new device id %d not past copied id %d", d.ID, row[0])
		}
	}
	for _, row := range a["messages"] {
		if row[0].(int64) >= m {
			t.Errorf("new message id %d not past copied id %d", m, row[0])
		}
	}
	for _, row := range a["deliveries"] {
		if len(p) != 1 || row[0].(int64) >= p[0].Seq {
			t.Errorf("new delivery %v not past copied seq %d", seqs(p), row[0])
		}
	}
}

func mustAccount(t testing.TB, st store.Store, name string) store.Account {
	t.Helper()
	a, err := st.Account(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A populated store copies into a fresh one of the same kind, which then
// refuses a second copy.
func testCopy(t *testing.T, open Opener) {
	ctx := context.Background()
	src := open(t)
	Populate(t, src)
	t.Run("target", func(t *testing.T) {
		dst := open(t)
		var calls int
		counts, err := store.Copy(ctx, src, dst, func(string, int64) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, n := range counts {
			total += n
		}
		if calls == 0 || int64(calls) != total || len(counts) != len(store.CopyTables) {
			t.Errorf("%d progress calls for %d rows, %d tables in the summary", calls, total, len(counts))
		}
		CheckCopy(t, src, dst, counts)
		if _, err := store.Copy(ctx, src, dst, nil); !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("copy into a store with state: %v, want ErrNotEmpty", err)
		}
	})
}
