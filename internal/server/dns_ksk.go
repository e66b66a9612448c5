package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/dnszone"
)

// KSK rollover by double signature (RFC 6781 §4.1.2), driven by the
// operator because the parent's DS must change with it:
//
//  1. ksk-prepublish: a new KSK (<ksk>-next) joins the DNSKEY RRset and
//     signs it beside the old one; the parent keeps the old DS. Either DS
//     validates the zone.
//  2. ksk-activate, once the new DNSKEY RRset has had its TTL to reach
//     caches: the new key becomes <ksk> (the zone's DS, what devices and
//     'dns ds' get), the old one <ksk>-old, still signing. The operator
//     replaces the DS at the parent with the new one now.
//  3. ksk-retire, once the parent's old DS has expired from caches (its
//     TTL, --parent-ds-ttl): the old key is removed.
//
// The commands change the key files and dns-ksk-rollover beside them; the
// running node reads them within keySyncEvery (syncZoneKeys) and re-signs
// the DNSKEY RRset. Devices follow through the anchor endpoint
// (dns_anchor.go), which gives every published KSK's DS.

const (
	kskRolloverFile = "dns-ksk-rollover"
	// keySyncEvery is how often the running node looks for key changes
	// made by the operator commands.
	keySyncEvery = 5 * time.Second
	// DefaultParentDSTTL is the parent's DS TTL assumed by ksk-retire: a
	// day, the common TTL of DS records in TLDs.
	DefaultParentDSTTL = 24 * time.Hour
)

// Errors of the key rollover commands.
var (
	ErrRolloverBusy = errors.New("a key rollover is in progress")
	ErrNoRollover   = errors.New("no key rollover in this state")
	ErrTooEarly     = dnszone.ErrTooEarly
)

type kskRolloverState struct {
	Prepublished time.Time `json:"prepublished,omitzero"`
	Activated    time.Time `json:"activated,omitzero"`
}

// KSKStatus is where a KSK rollover stands, and what the parent zone
// should hold.
type KSKStatus struct {
	Zone         string    `json:"zone"`
	Step         string    `json:"step"` // none, prepublished, activated
	KSK          uint16    `json:"ksk"`  // the zone's KSK (its DS is 'dns ds')
	Incoming     uint16    `json:"incoming,omitempty"`
	Outgoing     uint16    `json:"outgoing,omitempty"`
	DS           []string  `json:"ds"`        // every DS that validates the zone now
	ParentDS     []string  `json:"parent_ds"` // what the parent should publish after this step
	Next         string    `json:"next,omitempty"`
	NotBefore    time.Time `json:"not_before,omitzero"` // the next step's earliest time
	Prepublished time.Time `json:"prepublished,omitzero"`
	Activated    time.Time `json:"activated,omitzero"`
}

func kskBases(cfg Config) (dir, cur, next, old string) {
	dir, cur = keyPath(cfg, cfg.DNS.KSKFile)
	return dir, cur, cur + "-next", cur + "-old"
}

// loadKSKs reads the zone's KSK and, during a rollover, the incoming or
// the outgoing one.
func loadKSKs(cfg Config) (cur, next, old *dnszone.Key, st kskRolloverState, err error) {
	dir, curBase, nextBase, oldBase := kskBases(cfg)
	if cur, err = dnszone.LoadKey(dir, curBase); err != nil {
		return nil, nil, nil, st, err
	}
	if keyExists(dir, nextBase) {
		if next, err = dnszone.LoadKey(dir, nextBase); err != nil {
			return nil, nil, nil, st, err
		}
	}
	if keyExists(dir, oldBase) {
		if old, err = dnszone.LoadKey(dir, oldBase); err != nil {
			return nil, nil, nil, st, err
		}
	}
	if next != nil && old != nil {
		return nil, nil, nil, st, fmt.Errorf("both %s and %s exist: remove the one that is not part of the rollover", nextBase, oldBase)
	}
	if b, err := os.ReadFile(filepath.Join(dir, kskRolloverFile)); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, nil, nil, st, fmt.Errorf("%s: %w", kskRolloverFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, st, err
	}
	return cur, next, old, st, nil
}

func saveKSKRollover(cfg Config, st kskRolloverState) error {
	dir, _, _, _ := kskBases(cfg)
	if st == (kskRolloverState{}) {
		err := os.Remove(filepath.Join(dir, kskRolloverFile))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	b, _ := json.Marshal(st)
	tmp := filepath.Join(dir, kskRolloverFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, kskRolloverFile))
}

// KSKState reports the KSK rollover's state from the key files.
func KSKState(cfg Config) (KSKStatus, error) {
	cur, next, old, st, err := loadKSKs(cfg)
	if err != nil {
		return KSKStatus{}, err
	}
	s := KSKStatus{Zone: cfg.ZoneName(), Step: "none", KSK: cur.Tag(), Prepublished: st.Prepublished, Activated: st.Activated}
	s.DS = append(s.DS, cur.DS().String())
	s.ParentDS = []string{cur.DS().String()}
	switch {
	case next != nil:
		s.Step, s.Incoming = "prepublished", next.Tag()
		s.DS = append(s.DS, next.DS().String())
		s.Next = "phonexd dns ksk-activate, then replace the parent's DS with the new key's: " + next.DS().String()
		s.NotBefore = st.Prepublished.Add(activateWait)
	case old != nil:
		s.Step, s.Outgoing = "activated", old.Tag()
		s.DS = append(s.DS, old.DS().String())
		s.Next = "phonexd dns ksk-retire, once the parent publishes only the new DS and the old one's TTL has passed"
		s.NotBefore = st.Activated.Add(DefaultParentDSTTL)
	}
	return s, nil
}

// activateWait: the new DNSKEY RRset must have reached the caches (its TTL)
// after the node picked the key up (within keySyncEvery).
const activateWait = dnszone.DNSKEYTTL*time.Second + time.Minute

// KSKPrepublish makes a new KSK and publishes it beside the current one
// (step 1).
func KSKPrepublish(cfg Config, now time.Time) (KSKStatus, error) {
	_, next, old, _, err := loadKSKs(cfg)
	if err != nil {
		return KSKStatus{}, err
	}
	if next != nil || old != nil {
		return KSKStatus{}, fmt.Errorf("ksk-prepublish: %w (see 'phonexd dns status')", ErrRolloverBusy)
	}
	alg, err := cfg.DNS.algorithm()
	if err != nil {
		return KSKStatus{}, err
	}
	dir, cur, nextBase, _ := kskBases(cfg)
	var k *dnszone.Key
	for {
		if k, err = dnszone.GenerateKey(cfg.ZoneName(), alg, true); err != nil {
			return KSKStatus{}, err
		}
		// A key tag shared with a published key would make validators
		// try the wrong key (RFC 4034 Appendix B: tags are not unique).
		if c, _ := dnszone.LoadKey(dir, cur); c == nil || c.Tag() != k.Tag() {
			break
		}
	}
	if err := k.Write(dir, nextBase); err != nil {
		return KSKStatus{}, err
	}
	if err := saveKSKRollover(cfg, kskRolloverState{Prepublished: now}); err != nil {
		return KSKStatus{}, err
	}
	return KSKState(cfg)
}

// KSKActivate makes the pre-published KSK the zone's (step 2); force skips
// the wait for the DNSKEY TTL.
func KSKActivate(cfg Config, now time.Time, force bool) (KSKStatus, error) {
	_, next, _, st, err := loadKSKs(cfg)
	if err != nil {
		return KSKStatus{}, err
	}
	if next == nil {
		return KSKStatus{}, fmt.Errorf("ksk-activate: %w (no pre-published KSK; run 'phonexd dns ksk-prepublish')", ErrNoRollover)
	}
	if wait := st.Prepublished.Add(activateWait).Sub(now); wait > 0 && !force {
		return KSKStatus{}, fmt.Errorf("ksk-activate: %w: resolvers may not know the new DNSKEY RRset for %v more", ErrTooEarly, wait.Round(time.Second))
	}
	dir, cur, nextBase, oldBase := kskBases(cfg)
	if err := renameKey(dir, cur, oldBase); err != nil {
		return KSKStatus{}, err
	}
	if err := renameKey(dir, nextBase, cur); err != nil {
		return KSKStatus{}, err
	}
	st.Activated = now
	if err := saveKSKRollover(cfg, st); err != nil {
		return KSKStatus{}, err
	}
	s, err := KSKState(cfg)
	s.NotBefore = now.Add(DefaultParentDSTTL)
	return s, err
}

// KSKRetire removes the old KSK (step 3) once parentTTL has passed since
// activation; force skips the wait.
func KSKRetire(cfg Config, now time.Time, parentTTL time.Duration, force bool) (KSKStatus, error) {
	_, _, old, st, err := loadKSKs(cfg)
	if err != nil {
		return KSKStatus{}, err
	}
	if old == nil {
		return KSKStatus{}, fmt.Errorf("ksk-retire: %w (no outgoing KSK; 'phonexd dns ksk-activate' comes first)", ErrNoRollover)
	}
	if wait := st.Activated.Add(parentTTL).Sub(now); wait > 0 && !force {
		return KSKStatus{}, fmt.Errorf("ksk-retire: %w: the parent's old DS may still be cached for %v (its TTL from activation); make sure the parent publishes only the new DS",
			ErrTooEarly, wait.Round(time.Second))
	}
	dir, _, _, oldBase := kskBases(cfg)
	for _, ext := range []string{".private", ".key"} {
		if err := os.Remove(filepath.Join(dir, oldBase+ext)); err != nil {
			return KSKStatus{}, fmt.Errorf("ksk-retire: %w", err)
		}
	}
	if err := saveKSKRollover(cfg, kskRolloverState{}); err != nil {
		return KSKStatus{}, err
	}
	return KSKState(cfg)
}

// ZSKRollNow starts a ZSK rollover at once, whatever the key's age: the
// new key is written as <zsk>-next and the running node publishes it
// within keySyncEvery; its maintenance passes then activate it and retire
// the old key as for a rollover by age (dns_rollover.go).
func ZSKRollNow(cfg Config, now time.Time) (string, error) {
	next, old, st, err := loadRollover(cfg)
	if err != nil {
		return "", err
	}
	if next != nil || old != nil {
		return "", fmt.Errorf("zsk-roll: %w (a ZSK rollover is under way; the node finishes it)", ErrRolloverBusy)
	}
	alg, err := cfg.DNS.algorithm()
	if err != nil {
		return "", err
	}
	dir, _, nextBase, _ := rolloverBases(cfg)
	k, err := dnszone.GenerateKey(cfg.ZoneName(), alg, false)
	if err != nil {
		return "", err
	}
	if err := k.Write(dir, nextBase); err != nil {
		return "", err
	}
	st.Published = now
	if err := saveRollover(cfg, st); err != nil {
		return "", err
	}
	return fmt.Sprintf("zsk %d pre-published", k.Tag()), nil
}

// syncZoneKeys brings the running zone's keys in line with the key files
// the operator commands changed: the KSK pair, and a ZSK pre-published by
// 'dns zsk-roll'. It reports what it changed ("" for nothing).
func (n *Node) syncZoneKeys(z *dnszone.Zone) (string, error) {
	cur, next, old, _, err := loadKSKs(n.cfg)
	if err != nil {
		return "", err
	}
	second := next
	if old != nil {
		second = old
	}
	var want2 uint16
	if second != nil {
		want2 = second.Tag()
	}
	have, have2 := z.KSKTags()
	var did string
	if have != cur.Tag() || have2 != want2 {
		if err := z.SetKSKs(cur, second); err != nil {
			return "", err
		}
		did = fmt.Sprintf("ksk %d signs the DNSKEY RRset", cur.Tag())
		if second != nil {
			did += fmt.Sprintf(" with ksk %d", second.Tag())
		}
	}
	znext, zold, _, err := loadRollover(n.cfg)
	if err != nil {
		return did, err
	}
	if _, pub, retiring := z.RolloverState(); znext != nil && pub == 0 && retiring == 0 && zold == nil {
		if err := z.PrepublishZSK(znext); err != nil {
			return did, err
		}
		if did != "" {
			did += "; "
		}
		did += fmt.Sprintf("zsk %d pre-published", znext.Tag())
	}
	return did, nil
}

// ZoneDSSet is the DS record of every key-signing key the zone publishes:
// the KSK, and during a KSK rollover the incoming or outgoing one.
func ZoneDSSet(cfg Config) ([]*dns.DS, error) {
	cur, next, old, _, err := loadKSKs(cfg)
	if err != nil {
		return nil, err
	}
	out := []*dns.DS{cur.DS()}
	for _, k := range []*dnszone.Key{next, old} {
		if k != nil {
			out = append(out, k.DS())
		}
	}
	return out, nil
}
