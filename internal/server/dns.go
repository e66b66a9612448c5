package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/udptcp"
)

// DirectorySource gives the entries the directory zone publishes; the
// directory service implements it over the store. The zone reads it when it
// starts; PublishDirectory pushes later changes.
type DirectorySource interface {
	DirectoryEntries(ctx context.Context) ([]dnszone.Entry, error)
}

// dirZone is the node's directory zone, when dns_addr is set.
type dirZone struct {
	mu      sync.Mutex
	zone    *dnszone.Zone
	source  DirectorySource
	entries []dnszone.Entry // the last published, kept until the zone runs

	pc net.PacketConn
	ln net.Listener

	// keys serializes the node's own ZSK rollover steps with following the
	// operator's key files, which read and write the same files.
	keys sync.Mutex
}

// SetDirectorySource registers where the zone reads its entries at start.
func (n *Node) SetDirectorySource(src DirectorySource) {
	n.dir.mu.Lock()
	n.dir.source = src
	n.dir.mu.Unlock()
}

// PublishDirectory replaces the zone's entries (numbers, addresses and
// device certificates) and re-signs what changed. Without a running zone
// the entries are kept for when it starts.
func (n *Node) PublishDirectory(entries []dnszone.Entry) error {
	n.dir.mu.Lock()
	defer n.dir.mu.Unlock()
	if n.dir.zone != nil {
		if err := n.dir.zone.SetEntries(entries); err != nil {
			return fmt.Errorf("publish directory: %w", err)
		}
	}
	n.dir.entries = entries
	return nil
}

// DirectoryZone is the running zone, or nil.
func (n *Node) DirectoryZone() *dnszone.Zone {
	n.dir.mu.Lock()
	defer n.dir.mu.Unlock()
	return n.dir.zone
}

func keyPath(cfg Config, name string) (dir, base string) {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(cfg.DataDir, p)
	}
	return filepath.Dir(p), filepath.Base(p)
}

// InitDNSKeys makes the zone's KSK and ZSK unless their files exist, and
// returns the DS record for the parent zone.
func InitDNSKeys(cfg Config) (*dns.DS, error) {
	alg, err := cfg.DNS.algorithm()
	if err != nil {
		return nil, err
	}
	for _, k := range []struct {
		file string
		ksk  bool
	}{{cfg.DNS.KSKFile, true}, {cfg.DNS.ZSKFile, false}} {
		dir, base := keyPath(cfg, k.file)
		if _, err := os.Stat(filepath.Join(dir, base+".private")); err == nil {
			continue
		}
		key, err := dnszone.GenerateKey(cfg.ZoneName(), alg, k.ksk)
		if err != nil {
			return nil, err
		}
		if err := key.Write(dir, base); err != nil {
			return nil, err
		}
	}
	return ZoneDS(cfg)
}

// ZoneKeys loads the zone's KSK and ZSK.
func ZoneKeys(cfg Config) (ksk, zsk *dnszone.Key, err error) {
	dir, base := keyPath(cfg, cfg.DNS.KSKFile)
	if ksk, err = dnszone.LoadKey(dir, base); err != nil {
		return nil, nil, fmt.Errorf("%w (make the keys with 'phonexd dns keygen --data %s')", err, cfg.DataDir)
	}
	dir, base = keyPath(cfg, cfg.DNS.ZSKFile)
	if zsk, err = dnszone.LoadKey(dir, base); err != nil {
		return nil, nil, fmt.Errorf("%w (make the keys with 'phonexd dns keygen --data %s')", err, cfg.DataDir)
	}
	for _, k := range []*dnszone.Key{ksk, zsk} {
		if dns.CanonicalName(k.DNSKEY.Hdr.Name) != cfg.ZoneName() {
			return nil, nil, fmt.Errorf("key %s is for %s, not the zone %s: move the key files away and run 'phonexd dns keygen'",
				k, k.DNSKEY.Hdr.Name, cfg.ZoneName())
		}
	}
	return ksk, zsk, nil
}

// ZoneDS is the DS record of the zone's KSK.
func ZoneDS(cfg Config) (*dns.DS, error) {
	dir, base := keyPath(cfg, cfg.DNS.KSKFile)
	ksk, err := dnszone.LoadKey(dir, base)
	if err != nil {
		return nil, err
	}
	return ksk.DS(), nil
}

// publishable returns addr with the host it can be published under, or ""
// when its host is an unspecified address (a listener on all interfaces
// has no one address to publish; set relay_external_ip or a specific
// address).
func publishable(addr, external string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if external != "" {
		host = external
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsUnspecified()) || host == "" || port == "0" {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// zoneEndpoints are the node's listeners as the zone publishes them.
func (n *Node) zoneEndpoints() dnszone.Endpoints {
	ep := dnszone.Endpoints{CACert: n.ca.Cert.Raw}
	add := func(list *[]string, addr, external string) {
		if a := publishable(addr, external); a != "" {
			*list = append(*list, a)
		}
	}
	add(&ep.SIP, n.sipAddr(), "")
	add(&ep.API, n.cfg.APIAddr, "")
	if r := n.cfg.Relay; r.Enabled {
		add(&ep.TURN, r.Addr, r.ExternalIP)
		if r.TLSAddr != "" {
			add(&ep.TURNS, r.TLSAddr, r.ExternalIP)
		}
	}
	return ep
}

// BuildZone signs the node's zone: endpoints from the configuration,
// entries from the directory.
func (n *Node) BuildZone(ctx context.Context) (*dnszone.Zone, error) {
	ksk, zsk, err := ZoneKeys(n.cfg)
	if err != nil {
		return nil, err
	}
	var nsAddrs []netip.Addr
	if host, _, err := net.SplitHostPort(n.cfg.DNS.Addr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			nsAddrs = append(nsAddrs, ip)
		}
	}
	next, old, st, err := loadRollover(n.cfg)
	if err != nil {
		return nil, err
	}
	// A KSK rollover in progress (dns_ksk.go): the incoming or outgoing
	// key signs the DNSKEY RRset too.
	_, kskNext, kskOld, _, err := loadKSKs(n.cfg)
	if err != nil {
		return nil, err
	}
	ksk2 := kskNext
	if kskOld != nil {
		ksk2 = kskOld
	}
	z, err := dnszone.New(dnszone.Config{Origin: n.cfg.ZoneName(), KSK: ksk, KSK2: ksk2, ZSK: zsk, NSAddrs: nsAddrs, Now: n.now,
		ZSKNext: next, Published: st.Published, ZSKOld: old, Activated: st.Activated, RateLimit: n.cfg.DNS.RateLimit})
	if err != nil {
		return nil, err
	}
	if err := z.SetEndpoints(n.zoneEndpoints()); err != nil {
		return nil, err
	}
	n.dir.mu.Lock()
	src, entries := n.dir.source, n.dir.entries
	n.dir.mu.Unlock()
	if src != nil {
		if entries, err = src.DirectoryEntries(ctx); err != nil {
			return nil, fmt.Errorf("directory entries: %w", err)
		}
	}
	if err := z.SetEntries(entries); err != nil {
		return nil, err
	}
	return z, nil
}

// ExportZone writes the node's signed zone in master file syntax.
func (n *Node) ExportZone(ctx context.Context, w io.Writer) error {
	z, err := n.BuildZone(ctx)
	if err != nil {
		return err
	}
	return z.WriteZone(w)
}

// openDNS builds the zone and opens its sockets when dns_addr is set; nil
// when it is not.
func (n *Node) openDNS(ctx context.Context) (*dirZone, error) {
	if n.cfg.DNS.Addr == "" {
		return nil, nil
	}
	z, err := n.BuildZone(ctx)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	pc, ln, err := udptcp.Listen("udp", "tcp", n.cfg.DNS.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns listener: %w", err)
	}
	n.dir.mu.Lock()
	n.dir.zone, n.dir.pc, n.dir.ln = z, pc, ln
	n.dir.mu.Unlock()
	return &n.dir, nil
}

// serve answers queries, rolls the ZSK over when due and keeps the
// signatures fresh until ctx ends.
func (d *dirZone) serve(ctx context.Context, n *Node) {
	if d == nil {
		return
	}
	go n.maintainZone(ctx, d.zone, time.Hour)
	go n.followKeyFiles(ctx, d.zone, keySyncEvery)
	if err := d.zone.Serve(ctx, d.pc, d.ln); err != nil {
		n.log.Error("dns server stopped", "err", err)
	}
}

func (n *Node) maintainZone(ctx context.Context, z *dnszone.Zone, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.dir.keys.Lock()
		step, err := n.rollZSK(z)
		n.dir.keys.Unlock()
		if err != nil {
			n.log.Error("dns: zsk rollover", "err", err)
		} else if step != "" {
			n.log.Info("dns: " + step)
		}
		if err := z.Maintain(); err != nil {
			n.log.Error("dns: re-signing failed", "err", err)
		}
	}
}

// followKeyFiles applies the key changes the operator commands make
// ('phonexd dns ksk-…', 'dns zsk-roll') to the running zone.
func (n *Node) followKeyFiles(ctx context.Context, z *dnszone.Zone, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.dir.keys.Lock()
		did, err := n.syncZoneKeys(z)
		n.dir.keys.Unlock()
		if did != "" {
			n.log.Info("dns: " + did)
		}
		// A half-done command (files being renamed) fails once; say so
		// once, not every few seconds.
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			n.log.Error("dns: key files", "err", err)
		}
		lastErr = fmt.Sprint(err)
	}
}

func (d *dirZone) close() {
	if d == nil {
		return
	}
	d.pc.Close()
	d.ln.Close()
}

func (d *dirZone) line() string {
	return fmt.Sprintf("dns: %s (zone %s, UDP and TCP, DNSSEC; DS %s)", d.pc.LocalAddr(), d.zone.Origin(), d.zone.DS().String())
}
