package operator_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

var defaults = operator.Policy{MessageRate: 50, MessageBurst: 200, MaxStoredBytes: 64 << 20, FileQuota: 8 << 30, FileMaxSize: 4 << 30,
	FileExpiry: 336 * time.Hour, RegistrationExpiry: time.Hour, DeviceAttemptsLock: 10, AccountAttemptsLock: 20, LoginAttemptsLock: 20}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const actor = operator.Actor("cli:tester")

// fixture opens a store with accounts alpha, bravo, charlie (enrolled:
// active) and pending (no device) of example.org.
func fixture(t testing.TB) (*operator.Service, store.Store, *clock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "node.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s := operator.New(st, operator.Settings{Domain: "example.org", CodeTTL: time.Hour,
		Defaults: defaults, PollEvery: 100 * time.Millisecond}, operator.WithClock(c.now))
	for _, u := range []string{"alpha", "bravo", "charlie", "pending"} {
		if _, err := s.AddUser(ctx, actor, u+"@example.org", 0); err != nil {
			t.Fatal(err)
		}
		if u != "pending" {
			if err := st.SetAccountStatus(ctx, u+"@example.org", store.StatusActive); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s, st, c
}

func TestAddUser(t *testing.T) {
	s, st, _ := fixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user string
		ttl        time.Duration
		err        string
	}{
		{"new", "delta@example.org", 2 * time.Hour, ""},
		{"default ttl", "echo@example.org", 0, ""},
		{"exists", "alpha@example.org", 0, "already exists"},
		{"other domain", "x@example.com", 0, "not in this cluster's domain"},
		{"bad name", "no-at-sign", 0, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			act, err := s.AddUser(ctx, actor, tc.user, tc.ttl)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.ttl
			if want == 0 {
				want = time.Hour
			}
			if !act.Expires.Equal(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(want)) || len(act.Code) != 19 {
				t.Fatalf("activation %+v", act)
			}
			if _, err := st.Account(ctx, tc.user); err != nil {
				t.Fatal(err)
			}
			// The code is a secret: the audit log has its expiry, not it.
			es, _ := s.Audit(ctx, time.Time{}, 1)
			if len(es) != 1 || es[0].Target != tc.user || strings.Contains(es[0].Detail, act.Code) {
				t.Fatalf("audit %+v", es)
			}
		})
	}
	if _, err := s.AddUser(ctx, "", "foxtrot@example.org", 0); !errors.Is(err, operator.ErrNoActor) {
		t.Fatalf("no actor: %v", err)
	}
}

func TestUsersAndLifecycle(t *testing.T) {
	s, _, _ := fixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func() error
		want string // alpha's status after, or "gone"
		err  bool
	}{
		{"disable", func() error { return s.SetUserEnabled(ctx, actor, "alpha@example.org", false) }, "disabled", false},
		{"enable without password material is pending", func() error { return s.SetUserEnabled(ctx, actor, "alpha@example.org", true) }, "pending", false},
		{"disable unknown", func() error { return s.SetUserEnabled(ctx, actor, "zulu@example.org", false) }, "pending", true},
		{"unlock account", func() error { return s.Unlock(ctx, actor, "alpha@example.org") }, "pending", false},
		{"revoke unknown device", func() error { return s.RevokeDevice(ctx, actor, "alpha@example.org/laptop") }, "pending", true},
		{"remove", func() error { return s.RemoveUser(ctx, actor, "alpha@example.org") }, "gone", false},
		{"remove again", func() error { return s.RemoveUser(ctx, actor, "alpha@example.org") }, "gone", true},
	} {
		err := tc.do()
		if (err != nil) != tc.err {
			t.Fatalf("%s: err %v", tc.name, err)
		}
		us, err := s.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := "gone"
		for _, u := range us {
			if u.User == "alpha@example.org" {
				got = u.Status
			}
		}
		if got != tc.want {
			t.Fatalf("%s: status %s, want %s", tc.name, got, tc.want)
		}
	}
	if ds, err := s.Devices(ctx, ""); err != nil || len(ds) != 0 {
		t.Fatalf("devices %v %v", ds, err)
	}
}

func TestContacts(t *testing.T) {
	s, _, _ := fixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, verb, owner, contact, err string
	}{
		{"add", "add", "alpha@example.org", "bravo@example.org", ""},
		{"add again", "add", "alpha@example.org", "bravo@example.org", ""},
		{"self", "add", "alpha@example.org", "alpha@example.org", "own contact"},
		{"pending contact", "add", "alpha@example.org", "pending@example.org", "no device yet"},
		{"unknown owner", "add", "zulu@example.org", "bravo@example.org", "not found"},
		{"remove absent", "remove", "alpha@example.org", "charlie@example.org", "not on the contact list"},
		{"remove", "remove", "alpha@example.org", "bravo@example.org", ""},
	} {
		var err error
		if tc.verb == "add" {
			err = s.AddContact(ctx, actor, tc.owner, tc.contact)
		} else {
			err = s.RemoveContact(ctx, actor, tc.owner, tc.contact)
		}
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Fatalf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
	if cs, err := s.Contacts(ctx, "alpha@example.org"); err != nil || len(cs) != 0 {
		t.Fatalf("contacts %v %v", cs, err)
	}
}

func TestSetPolicyAndShow(t *testing.T) {
	s, _, _ := fixture(t)
	ctx := context.Background()
	if err := s.AddGroup(ctx, actor, "sales"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                       string
		account, group, key, value string
		err                        error
		errText                    string
	}{
		{"account rate", "alpha@example.org", "", "message_rate", "2.5", nil, ""},
		{"group storage", "", "sales", "max_stored_bytes", "4096", nil, ""},
		{"group expiry", "", "sales", "file_expiry", "1h", nil, ""},
		{"registration", "bravo@example.org", "", "registration_expiry", "5m", nil, ""},
		{"lock-out", "alpha@example.org", "", "device_attempts_lock", "4", nil, ""},
		{"lock-out zero", "alpha@example.org", "", "login_attempts_lock", "0", operator.ErrBadValue, ""},
		{"unknown key", "alpha@example.org", "", "colour", "red", operator.ErrUnknownKey, ""},
		{"bad number", "alpha@example.org", "", "message_burst", "many", operator.ErrBadValue, ""},
		{"below minimum", "alpha@example.org", "", "max_stored_bytes", "10", operator.ErrBadValue, ""},
		{"negative rate", "alpha@example.org", "", "message_rate", "-1", operator.ErrBadValue, ""},
		{"NaN rate", "alpha@example.org", "", "message_rate", "NaN", operator.ErrBadValue, ""},
		{"bad duration", "alpha@example.org", "", "file_expiry", "soon", operator.ErrBadValue, ""},
		{"no scope", "", "", "message_rate", "1", nil, "needs --account"},
		{"both scopes", "alpha@example.org", "sales", "message_rate", "1", nil, "not both"},
		{"unknown group", "", "nobody", "message_rate", "1", store.ErrNotFound, ""},
		{"unknown account", "zulu@example.org", "", "message_rate", "1", store.ErrNotFound, ""},
		{"reset absent", "charlie@example.org", "", "message_rate", "", nil, "has no override"},
	} {
		err := s.SetPolicy(ctx, actor, tc.account, tc.group, tc.key, tc.value)
		switch {
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		case tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)):
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.errText)
		case tc.err == nil && tc.errText == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := s.AddMember(ctx, actor, "sales", "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	show, err := s.ShowPolicy(ctx, "alpha@example.org", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]operator.Setting{
		"message_rate":        {Key: "message_rate", Value: "2.5", Source: "account"},
		"max_stored_bytes":    {Key: "max_stored_bytes", Value: "4096", Source: "group:sales"},
		"file_expiry":         {Key: "file_expiry", Value: "1h0m0s", Source: "group:sales"},
		"message_burst":       {Key: "message_burst", Value: "200", Source: "default"},
		"registration_expiry": {Key: "registration_expiry", Value: "1h0m0s", Source: "default"},
	}
	for _, st := range show {
		if w, ok := want[st.Key]; ok && st != w {
			t.Errorf("show %s: %+v, want %+v", st.Key, st, w)
		}
	}
	if len(show) != len(operator.Keys) {
		t.Errorf("show lists %d keys, want %d", len(show), len(operator.Keys))
	}
	def, err := s.ShowPolicy(ctx, "", "")
	if err != nil || def[0].Source != "default" {
		t.Fatalf("defaults %v %v", def, err)
	}
}

func TestEffectiveFollowsChanges(t *testing.T) {
	s, st, c := fixture(t)
	ctx := context.Background()
	// A second service on the same store stands for another process (the
	// commands, the panel, another node).
	other := operator.New(st, operator.Settings{Domain: "example.org", Defaults: defaults})
	for _, tc := range []struct {
		name   string
		change func() error
		want   operator.Policy
	}{
		{"defaults", func() error { return nil }, defaults},
		{"account override", func() error { return other.SetPolicy(ctx, actor, "alpha@example.org", "", "message_rate", "1") },
			with(defaults, func(p *operator.Policy) { p.MessageRate = 1 })},
		{"group override under the account's", func() error {
			if err := other.AddGroup(ctx, actor, "a-team"); err != nil {
				return err
			}
			if err := other.SetPolicy(ctx, actor, "", "a-team", "message_rate", "7"); err != nil {
				return err
			}
			if err := other.SetPolicy(ctx, actor, "", "a-team", "message_burst", "3"); err != nil {
				return err
			}
			return other.AddMember(ctx, actor, "a-team", "alpha@example.org")
		}, with(defaults, func(p *operator.Policy) { p.MessageRate = 1; p.MessageBurst = 3 })},
		{"first group by name wins", func() error {
			if err := other.AddGroup(ctx, actor, "b-team"); err != nil {
				return err
			}
			if err := other.SetPolicy(ctx, actor, "", "b-team", "message_burst", "9"); err != nil {
				return err
			}
			return other.AddMember(ctx, actor, "b-team", "alpha@example.org")
		}, with(defaults, func(p *operator.Policy) { p.MessageRate = 1; p.MessageBurst = 3 })},
		{"account override reset", func() error { return other.SetPolicy(ctx, actor, "alpha@example.org", "", "message_rate", "") },
			with(defaults, func(p *operator.Policy) { p.MessageRate = 7; p.MessageBurst = 3 })},
		{"left the first group", func() error { return other.RemoveMember(ctx, actor, "a-team", "alpha@example.org") },
			with(defaults, func(p *operator.Policy) { p.MessageBurst = 9 })},
		{"group removed", func() error { return other.RemoveGroup(ctx, actor, "b-team") }, defaults},
	} {
		if _, err := s.Effective(ctx, "alpha@example.org"); err != nil { // warm the cache
			t.Fatal(err)
		}
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c.add(100 * time.Millisecond) // one poll interval
		got, err := s.Effective(ctx, "alpha@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Fatalf("%s: effective %+v, want %+v", tc.name, got, tc.want)
		}
		if b, _ := s.Effective(ctx, "bravo@example.org"); b != defaults {
			t.Fatalf("%s: bravo's policy changed: %+v", tc.name, b)
		}
	}
}

func TestEffectiveCachedWithinPoll(t *testing.T) {
	s, st, _ := fixture(t)
	ctx := context.Background()
	if _, err := s.Effective(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	other := operator.New(st, operator.Settings{Domain: "example.org", Defaults: defaults})
	if err := other.SetPolicy(ctx, actor, "alpha@example.org", "", "message_burst", "5"); err != nil {
		t.Fatal(err)
	}
	// The clock has not moved: the cache answers without reading the store.
	if p, _ := s.Effective(ctx, "alpha@example.org"); p.MessageBurst != 200 {
		t.Fatalf("burst %d read before the poll interval", p.MessageBurst)
	}
}

func with(p operator.Policy, f func(*operator.Policy)) operator.Policy {
	f(&p)
	return p
}

func TestGroups(t *testing.T) {
	s, _, _ := fixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func() error
		err  string
	}{
		{"add", func() error { return s.AddGroup(ctx, actor, "ops") }, ""},
		{"add twice", func() error { return s.AddGroup(ctx, actor, "ops") }, "already exists"},
		{"bad name", func() error { return s.AddGroup(ctx, actor, "-ops") }, "bad group name"},
		{"bad characters", func() error { return s.AddGroup(ctx, actor, "o p") }, "bad group name"},
		{"too long", func() error { return s.AddGroup(ctx, actor, strings.Repeat("a", 65)) }, "bad group name"},
		{"member", func() error { return s.AddMember(ctx, actor, "ops", "alpha@example.org") }, ""},
		{"member twice", func() error { return s.AddMember(ctx, actor, "ops", "alpha@example.org") }, "already exists"},
		{"unknown account", func() error { return s.AddMember(ctx, actor, "ops", "zulu@example.org") }, "not found"},
		{"other domain", func() error { return s.AddMember(ctx, actor, "ops", "alpha@example.com") }, "domain"},
		{"unknown group", func() error { return s.AddMember(ctx, actor, "dev", "alpha@example.org") }, "not found"},
		{"second member", func() error { return s.AddMember(ctx, actor, "ops", "bravo@example.org") }, ""},
		{"remove absent member", func() error { return s.RemoveMember(ctx, actor, "ops", "charlie@example.org") }, "not found"},
		{"remove member", func() error { return s.RemoveMember(ctx, actor, "ops", "bravo@example.org") }, ""},
		{"remove unknown group", func() error { return s.RemoveGroup(ctx, actor, "dev") }, "no group"},
	} {
		err := tc.do()
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Fatalf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
	gs, err := s.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0] != (operator.GroupInfo{Group: "ops", Members: 1}) {
		t.Fatalf("groups %v %v", gs, err)
	}
	if ms, err := s.Members(ctx, "ops"); err != nil || len(ms) != 1 || ms[0] != "alpha@example.org" {
		t.Fatalf("members %v %v", ms, err)
	}
	// Removing the account removes its memberships.
	if err := s.RemoveUser(ctx, actor, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.Members(ctx, "ops"); err != nil || len(ms) != 0 {
		t.Fatalf("members after removal %v %v", ms, err)
	}
}

func TestProvision(t *testing.T) {
	s, st, _ := fixture(t)
	ctx := context.Background()
	s.AddGroup(ctx, actor, "team")
	for _, u := range []string{"alpha", "bravo", "charlie"} {
		if err := s.AddMember(ctx, actor, "team", u+"@example.org"); err != nil {
			t.Fatal(err)
		}
	}
	alpha, _ := st.Account(ctx, "alpha@example.org")
	bravo, _ := st.Account(ctx, "bravo@example.org")
	// alpha had bravo already.
	st.AddContact(ctx, alpha.ID, "bravo@example.org", time.Now())
	res, err := s.Provision(ctx, actor, "team")
	if err != nil {
		t.Fatal(err)
	}
	if res != (operator.Provisioned{Group: "team", Members: 3, Added: 5, Kept: 1}) {
		t.Fatalf("first provisioning %+v", res)
	}
	for _, u := range []string{"alpha", "bravo", "charlie"} {
		cs, _ := s.Contacts(ctx, u+"@example.org")
		if len(cs) != 2 || !cs[0].Provisioned || !cs[1].Provisioned {
			t.Fatalf("%s has %v", u, cs)
		}
	}
	// bravo removes charlie; a later provisioning respects it, and adds
	// a new member both ways.
	if err := st.RemoveContact(ctx, bravo.ID, "charlie@example.org"); err != nil {
		t.Fatal(err)
	}
	s.AddMember(ctx, actor, "team", "pending@example.org")
	res, err = s.Provision(ctx, actor, "team")
	if err != nil {
		t.Fatal(err)
	}
	if res != (operator.Provisioned{Group: "team", Members: 4, Added: 6, Kept: 6}) {
		t.Fatalf("second provisioning %+v", res)
	}
	cs, _ := st.Contacts(ctx, bravo.ID)
	if strings.Join(cs, ",") != "alpha@example.org,pending@example.org" {
		t.Fatalf("bravo's contacts %v: the removal was undone", cs)
	}
	if p, _ := st.ProvisionedContacts(ctx, bravo.ID); len(p) != 3 {
		t.Fatalf("provisioned to bravo %v", p)
	}
	if _, err := s.Provision(ctx, actor, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestAudit(t *testing.T) {
	s, _, c := fixture(t) // four user.add entries at 12:00
	ctx := context.Background()
	c.add(time.Minute)
	mark := c.now()
	steps := []struct {
		do             func() error
		action, target string
	}{
		{func() error { return s.AddGroup(ctx, "admin:root", "ops") }, "group.add", "ops"},
		{func() error { return s.AddMember(ctx, actor, "ops", "alpha@example.org") }, "group.add-member", "ops"},
		{func() error { return s.SetPolicy(ctx, actor, "", "ops", "message_rate", "3") }, "policy.set", "group:ops"},
		{func() error { return s.AddContact(ctx, actor, "alpha@example.org", "bravo@example.org") }, "contacts.add", "alpha@example.org"},
		{func() error { _, err := s.Provision(ctx, actor, "ops"); return err }, "group.provision", "ops"},
		{func() error { return s.SetUserEnabled(ctx, actor, "bravo@example.org", false) }, "user.disable", "bravo@example.org"},
		{func() error { return s.Record(ctx, "admin:root", "admin.sign-in", "root", "") }, "admin.sign-in", "root"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
	}
	// A failed action is not recorded.
	s.AddGroup(ctx, actor, "ops")
	es, err := s.Audit(ctx, mark, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(steps) {
		t.Fatalf("%d entries since the mark, want %d: %+v", len(es), len(steps), es)
	}
	for i, st := range steps {
		if es[i].Action != st.action || es[i].Target != st.target {
			t.Errorf("entry %d: %+v, want %s %s", i, es[i], st.action, st.target)
		}
		// Never contact lists: no entry names the contact added.
		if strings.Contains(es[i].Detail, "bravo") && st.action == "contacts.add" {
			t.Errorf("entry %d names the contact: %+v", i, es[i])
		}
	}
	if es[0].Actor != "admin:root" || es[1].Actor != string(actor) || !es[1].Time.Equal(mark.Add(time.Second)) {
		t.Errorf("actor or time: %+v", es[:2])
	}
	all, _ := s.Audit(ctx, time.Time{}, 0)
	if len(all) != len(steps)+4 || all[0].Action != "user.add" {
		t.Fatalf("all entries %+v", all)
	}
	last, _ := s.Audit(ctx, time.Time{}, 2)
	if len(last) != 2 || last[1].Action != "admin.sign-in" {
		t.Fatalf("last two %+v", last)
	}
}

func TestUsersPage(t *testing.T) {
	s, st, _ := fixture(t) // alpha, bravo, charlie, pending
	ctx := context.Background()
	for _, u := range []string{"al_ice", "alfa"} {
		if _, err := s.AddUser(ctx, actor, u+"@example.org", 0); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := st.Account(ctx, "alpha@example.org")
	st.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: "d", Handle: "h", Suite: "ec", Serial: "1", Cert: []byte{1}, SealedOPRF: []byte{1}, Created: time.Now()})
	for _, tc := range []struct {
		name, search, after string
		limit               int
		want                string
		total               int
		next                string
	}{
		{"first page", "", "", 2, "al_ice@example.org alfa@example.org", 6, "alfa@example.org"},
		{"second page", "", "alfa@example.org", 2, "alpha@example.org bravo@example.org", 6, "bravo@example.org"},
		{"last page", "", "bravo@example.org", 2, "charlie@example.org pending@example.org", 6, ""},
		{"search", "AL", "", 10, "al_ice@example.org alfa@example.org alpha@example.org", 3, ""},
		{"search with a LIKE character", "l_", "", 10, "al_ice@example.org", 1, ""},
		{"search with percent", "%", "", 10, "", 0, ""},
		{"no match", "zulu", "", 10, "", 0, ""},
		{"limit over the maximum", "", "", 100000, "al_ice@example.org alfa@example.org alpha@example.org bravo@example.org charlie@example.org pending@example.org", 6, ""},
	} {
		p, err := s.UsersPage(ctx, tc.search, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range p.Users {
			got = append(got, u.User)
		}
		if strings.Join(got, " ") != tc.want || p.Total != tc.total || p.Next != tc.next {
			t.Errorf("%s: %v total %d next %q", tc.name, got, p.Total, p.Next)
		}
	}
	p, _ := s.UsersPage(ctx, "alpha", "", 1)
	if len(p.Users) != 1 || p.Users[0].Devices != 1 || p.Users[0].Status != "active" {
		t.Fatalf("alpha: %+v", p.Users)
	}
}

// Users reads every account across pages.
func TestUsersAcrossPages(t *testing.T) {
	s, st, _ := fixture(t)
	ctx := context.Background()
	n := operator.MaxPage + 3
	for i := 0; i < n; i++ {
		if _, err := st.CreateAccount(ctx, fmt.Sprintf("u%04d@example.org", i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	us, err := s.Users(ctx)
	if err != nil || len(us) != n+4 {
		t.Fatalf("%d users, %v", len(us), err)
	}
	for i := 1; i < len(us); i++ {
		if us[i-1].User >= us[i].User {
			t.Fatalf("out of order at %d: %s %s", i, us[i-1].User, us[i].User)
		}
	}
}
