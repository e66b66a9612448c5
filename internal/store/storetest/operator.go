package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("operator",
		test{"Policies", testPolicies},
		test{"PolicyGeneration", testPolicyGeneration},
		test{"Groups", testGroups},
		test{"ProvisionContact", testProvisionContact},
		test{"ProvisionContactConcurrent", testProvisionContactConcurrent},
		test{"Audit", testAudit},
		test{"AccountPage", testAccountPage},
	)
}

// Overrides are stored, replaced, listed by scope then key, removed by an
// empty value (ErrNotFound when there was none), and go with their account
// or group.
func testPolicies(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Unix(1700000000, 0)
	device(t, db, "a@x.org", "d")
	acct := store.PolicyScope{Kind: store.ScopeAccount, Name: "a@x.org"}
	grp := store.PolicyScope{Kind: store.ScopeGroup, Name: "team"}
	if err := db.CreateGroup(ctx, "team", now); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		scope      store.PolicyScope
		key, value string
	}{{acct, "message_rate", "5"}, {grp, "message_burst", "9"}, {acct, "file_quota", "100"}, {acct, "message_rate", "7"}} {
		if err := db.SetPolicy(ctx, c.scope, c.key, c.value, now); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := db.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Scope.Kind+":"+p.Scope.Name+":"+p.Key+"="+p.Value)
		if !p.Updated.Equal(now) {
			t.Errorf("updated %v", p.Updated)
		}
	}
	if want := "account:a@x.org:file_quota=100 account:a@x.org:message_rate=7 group:team:message_burst=9"; strings.Join(got, " ") != want {
		t.Fatalf("policies %v, want %s", got, want)
	}
	if err := db.SetPolicy(ctx, acct, "file_quota", "", now); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPolicy(ctx, acct, "file_quota", "", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing an absent override: %v", err)
	}
	if err := db.DeleteGroup(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAccount(ctx, "a@x.org"); err != nil {
		t.Fatal(err)
	}
	if ps, _ := db.Policies(ctx); len(ps) != 0 {
		t.Fatalf("overrides outlived their account and group: %+v", ps)
	}
}

// The generation moves on every change to overrides, groups and
// memberships, from any handle, and not on other writes.
func testPolicyGeneration(t *testing.T, open Opener) {
	ctx := context.Background()
	db, other := open(t), open(t)
	now := time.Now()
	device(t, db, "a@x.org", "d")
	last, err := db.PolicyGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		moves bool
		do    func() error
	}{
		{"override set", true, func() error {
			return other.SetPolicy(ctx, store.PolicyScope{Kind: store.ScopeAccount, Name: "a@x.org"}, "k", "1", now)
		}},
		{"override changed", true, func() error {
			return other.SetPolicy(ctx, store.PolicyScope{Kind: store.ScopeAccount, Name: "a@x.org"}, "k", "2", now)
		}},
		{"group created", false, func() error { return other.CreateGroup(ctx, "g", now) }},
		{"member added", true, func() error { return other.AddGroupMember(ctx, "g", "a@x.org") }},
		{"contact added", false, func() error { return other.AddContact(ctx, 1, "b@x.org", now) }},
		{"audit appended", false, func() error { return other.AppendAudit(ctx, store.AuditEntry{Time: now, Actor: "a", Action: "x"}) }},
		{"member removed", true, func() error { return other.RemoveGroupMember(ctx, "g", "a@x.org") }},
		{"group deleted", true, func() error { return other.DeleteGroup(ctx, "g") }},
		{"override removed", true, func() error {
			return other.SetPolicy(ctx, store.PolicyScope{Kind: store.ScopeAccount, Name: "a@x.org"}, "k", "", now)
		}},
	} {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		g, err := db.PolicyGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if (g != last) != c.moves {
			t.Errorf("%s: generation %d -> %d", c.name, last, g)
		}
		last = g
	}
}

func testGroups(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Unix(1700000000, 0)
	device(t, db, "b@x.org", "d")
	device(t, db, "a@x.org", "d")
	for _, c := range []struct {
		name string
		do   func() error
		err  error
	}{
		{"create", func() error { return db.CreateGroup(ctx, "ops", now) }, nil},
		{"create again", func() error { return db.CreateGroup(ctx, "ops", now) }, store.ErrExists},
		{"create second", func() error { return db.CreateGroup(ctx, "dev", now) }, nil},
		{"member", func() error { return db.AddGroupMember(ctx, "ops", "b@x.org") }, nil},
		{"member twice", func() error { return db.AddGroupMember(ctx, "ops", "b@x.org") }, store.ErrExists},
		{"second member", func() error { return db.AddGroupMember(ctx, "ops", "a@x.org") }, nil},
		{"member of two", func() error { return db.AddGroupMember(ctx, "dev", "a@x.org") }, nil},
		{"unknown account", func() error { return db.AddGroupMember(ctx, "ops", "z@x.org") }, store.ErrNotFound},
		{"unknown group", func() error { return db.AddGroupMember(ctx, "qa", "a@x.org") }, store.ErrNotFound},
		{"remove absent member", func() error { return db.RemoveGroupMember(ctx, "dev", "b@x.org") }, store.ErrNotFound},
		{"delete unknown", func() error { return db.DeleteGroup(ctx, "qa") }, store.ErrNotFound},
	} {
		if err := c.do(); !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", c.name, err, c.err)
		}
	}
	gs, err := db.Groups(ctx)
	if err != nil || len(gs) != 2 || gs[0].Name != "dev" || gs[0].Members != 1 || gs[1].Name != "ops" || gs[1].Members != 2 || !gs[1].Created.Equal(now) {
		t.Fatalf("groups %+v %v", gs, err)
	}
	if ms, err := db.GroupMembers(ctx, "ops"); err != nil || strings.Join(ms, ",") != "a@x.org,b@x.org" {
		t.Fatalf("members %v %v", ms, err)
	}
	if _, err := db.GroupMembers(ctx, "qa"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("members of unknown group: %v", err)
	}
	if gs, err := db.AccountGroups(ctx, "a@x.org"); err != nil || strings.Join(gs, ",") != "dev,ops" {
		t.Fatalf("groups of a: %v %v", gs, err)
	}
	if gs, err := db.AccountGroups(ctx, "z@x.org"); err != nil || len(gs) != 0 {
		t.Fatalf("groups of unknown account: %v %v", gs, err)
	}
	// An account's removal ends its memberships; a group's, its own.
	if err := db.DeleteAccount(ctx, "a@x.org"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteGroup(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := db.GroupMembers(ctx, "ops"); strings.Join(ms, ",") != "b@x.org" {
		t.Fatalf("members after the account's removal: %v", ms)
	}
	if gs, _ := db.Groups(ctx); len(gs) != 1 {
		t.Fatalf("groups after removal %+v", gs)
	}
}

// A provisioned contact is added once: kept when already listed, and not
// added again after the account removed it.
func testProvisionContact(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	a := device(t, db, "a@x.org", "d")
	now := time.Now()
	db.AddContact(ctx, a.AccountID, "c@x.org", now)
	for _, c := range []struct {
		name, contact string
		added         bool
		remove        bool
	}{
		{"new", "b@x.org", true, false},
		{"again", "b@x.org", false, true}, // then the account removes b
		{"after removal", "b@x.org", false, false},
		{"already listed", "c@x.org", false, false},
	} {
		added, err := db.ProvisionContact(ctx, a.AccountID, c.contact, now)
		if err != nil || added != c.added {
			t.Fatalf("%s: added %v %v", c.name, added, err)
		}
		if c.remove {
			if err := db.RemoveContact(ctx, a.AccountID, c.contact); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cs, _ := db.Contacts(ctx, a.AccountID); strings.Join(cs, ",") != "c@x.org" {
		t.Fatalf("contacts %v", cs)
	}
	if ps, err := db.ProvisionedContacts(ctx, a.AccountID); err != nil || strings.Join(ps, ",") != "b@x.org,c@x.org" {
		t.Fatalf("provisioned %v %v", ps, err)
	}
}

// Concurrent provisionings of one contact add it exactly once.
func testProvisionContactConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	a := device(t, db, "a@x.org", "d")
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := db.ProvisionContact(ctx, a.AccountID, "b@x.org", time.Now())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if ok {
				added++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if added != 1 {
		t.Fatalf("added %d times", added)
	}
}

func testAudit(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	base := time.Unix(1700000000, 0)
	for i, a := range []string{"user.add", "group.add", "policy.set", "device.revoke"} {
		if err := db.AppendAudit(ctx, store.AuditEntry{Time: base.Add(time.Duration(i) * time.Minute), Actor: "cli:root", Action: a, Target: "t", Detail: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		since time.Time
		limit int
		want  string
	}{
		{"all", time.Time{}, 0, "user.add group.add policy.set device.revoke"},
		{"since", base.Add(time.Minute), 0, "group.add policy.set device.revoke"},
		{"newest two", time.Time{}, 2, "policy.set device.revoke"},
		{"since and limit", base.Add(2 * time.Minute), 5, "policy.set device.revoke"},
		{"none", base.Add(time.Hour), 0, ""},
	} {
		es, err := db.Audit(ctx, c.since, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Action)
		}
		if strings.Join(got, " ") != c.want || es == nil {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
	}
	es, _ := db.Audit(ctx, time.Time{}, 1)
	if e := es[0]; e.Actor != "cli:root" || e.Target != "t" || e.Detail != "d" || !e.Time.Equal(base.Add(3*time.Minute)) || e.ID == 0 {
		t.Fatalf("entry %+v", e)
	}
}

// Accounts come a page at a time in bytewise name order after a cursor,
// filtered by a substring in which LIKE's own characters match only
// themselves, with their device counts and no secrets.
func testAccountPage(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	for _, n := range []string{"b@x.org", "a_b@x.org", "ab@x.org", "a%c@x.org", "Z@x.org"} {
		if _, err := db.CreateAccount(ctx, n, time.Unix(1700000000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	device(t, db, "ab@x.org", "one")
	device(t, db, "ab@x.org", "two")
	for _, c := range []struct {
		name, search, after string
		limit               int
		want                string
		count               int
	}{
		{"all", "", "", 10, "Z@x.org a%c@x.org a_b@x.org ab@x.org b@x.org", 5},
		{"first two", "", "", 2, "Z@x.org a%c@x.org", 5},
		{"after a cursor", "", "a%c@x.org", 2, "a_b@x.org ab@x.org", 5},
		{"substring", "b@", "", 10, "a_b@x.org ab@x.org b@x.org", 3},
		{"underscore is literal", "_", "", 10, "a_b@x.org", 1},
		{"percent is literal", "%", "", 10, "a%c@x.org", 1},
		{"none", "q", "", 10, "", 0},
	} {
		page, err := db.AccountPage(ctx, c.search, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range page {
			got = append(got, a.Name)
		}
		if strings.Join(got, " ") != c.want || page == nil {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
		if n, err := db.CountAccounts(ctx, c.search); err != nil || n != c.count {
			t.Errorf("%s: count %d %v, want %d", c.name, n, err, c.count)
		}
	}
	page, _ := db.AccountPage(ctx, "ab@", "", 1)
	if len(page) != 1 || page[0].Devices != 2 || page[0].Status != store.StatusPending || !page[0].Created.Equal(time.Unix(1700000000, 0)) || page[0].ID == 0 {
		t.Fatalf("ab: %+v", page)
	}
}
