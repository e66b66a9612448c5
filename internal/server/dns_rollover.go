package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/phonex/phonex/internal/dnszone"
)

// The ZSK rolls over by pre-publication (RFC 6781 §4.1.1.1), one step per
// maintenance pass of the running node: when the ZSK is older than
// dns_zsk_lifetime a new key is made (<zsk>-next) and published; once the
// DNSKEY TTL has passed it signs the zone and the old key becomes
// <zsk>-old, still published; once the zone's largest TTL has passed the
// old key is removed. The times live in dns-rollover beside the keys, so a
// restart resumes where the rollover stood.

const rolloverFile = "dns-rollover"

type rolloverState struct {
	Published time.Time `json:"published,omitzero"` // the next key joined the DNSKEY RRset
	Activated time.Time `json:"activated,omitzero"` // the current key replaced the old one
	Since     time.Time `json:"since,omitzero"`     // the current key signs since (zero: since its file was written)
}

func rolloverBases(cfg Config) (dir, cur, next, old string) {
	dir, cur = keyPath(cfg, cfg.DNS.ZSKFile)
	return dir, cur, cur + "-next", cur + "-old"
}

func keyExists(dir, base string) bool {
	_, err := os.Stat(filepath.Join(dir, base+".private"))
	return err == nil
}

// loadRollover reads a rollover in progress: the pre-published or the
// retiring key, with its time.
func loadRollover(cfg Config) (next, old *dnszone.Key, st rolloverState, err error) {
	dir, _, nextBase, oldBase := rolloverBases(cfg)
	if b, err := os.ReadFile(filepath.Join(dir, rolloverFile)); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, nil, st, fmt.Errorf("%s: %w", rolloverFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, st, err
	}
	if keyExists(dir, nextBase) {
		if next, err = dnszone.LoadKey(dir, nextBase); err != nil {
			return nil, nil, st, err
		}
	}
	if keyExists(dir, oldBase) {
		if old, err = dnszone.LoadKey(dir, oldBase); err != nil {
			return nil, nil, st, err
		}
	}
	return next, old, st, nil
}

func saveRollover(cfg Config, st rolloverState) error {
	dir, _, _, _ := rolloverBases(cfg)
	b, _ := json.Marshal(st)
	tmp := filepath.Join(dir, rolloverFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, rolloverFile))
}

func renameKey(dir, from, to string) error {
	for _, ext := range []string{".private", ".key"} {
		if err := os.Rename(filepath.Join(dir, from+ext), filepath.Join(dir, to+ext)); err != nil {
			return fmt.Errorf("zsk rollover: %w", err)
		}
	}
	return nil
}

// rollZSK takes the next rollover step that is due and reports it ("" when
// none is).
func (n *Node) rollZSK(z *dnszone.Zone) (string, error) {
	cfg := n.cfg
	dir, cur, nextBase, oldBase := rolloverBases(cfg)
	next, old, st, err := loadRollover(cfg)
	if err != nil {
		return "", err
	}
	now := n.now()
	switch {
	case old != nil:
		if err := z.RetireZSK(); errors.Is(err, dnszone.ErrTooEarly) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		for _, ext := range []string{".private", ".key"} {
			os.Remove(filepath.Join(dir, oldBase+ext))
		}
		return fmt.Sprintf("zsk %d retired", old.Tag()), saveRollover(cfg, rolloverState{Since: st.Since})
	case next != nil:
		if err := z.ActivateZSK(); errors.Is(err, dnszone.ErrTooEarly) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		if err := renameKey(dir, cur, oldBase); err != nil {
			return "", err
		}
		if err := renameKey(dir, nextBase, cur); err != nil {
			return "", err
		}
		return fmt.Sprintf("zsk %d signs the zone", next.Tag()), saveRollover(cfg, rolloverState{Activated: now, Since: now})
	}
	if cfg.DNS.ZSKLifetime == 0 {
		return "", nil
	}
	since := st.Since
	if since.IsZero() {
		fi, err := os.Stat(filepath.Join(dir, cur+".key"))
		if err != nil {
			return "", err
		}
		since = fi.ModTime()
	}
	if now.Sub(since) < cfg.DNS.ZSKLifetime {
		return "", nil
	}
	alg, err := cfg.DNS.algorithm()
	if err != nil {
		return "", err
	}
	k, err := dnszone.GenerateKey(cfg.ZoneName(), alg, false)
	if err != nil {
		return "", err
	}
	if err := k.Write(dir, nextBase); err != nil {
		return "", err
	}
	if err := z.PrepublishZSK(k); err != nil {
		for _, ext := range []string{".private", ".key"} {
			os.Remove(filepath.Join(dir, nextBase+ext))
		}
		return "", err
	}
	st.Published = now
	return fmt.Sprintf("zsk %d pre-published", k.Tag()), saveRollover(cfg, st)
}
