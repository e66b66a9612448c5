package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/pow"
	"github.com/phonex/phonex/internal/server/directory"
	"github.com/phonex/phonex/internal/server/files"
	"github.com/phonex/phonex/internal/throttle"
)

// ConfigFile is the name of the configuration file in the data directory.
const ConfigFile = "phonexd.conf"

// Config is every setting of a node. phonexd init writes all of them out
// with their defaults.
type Config struct {
	DataDir      string        // not in the file: where the file is
	Store        string        // "" (the SQLite database in DataDir), sqlite:DIR or postgres://… (config_store.go)
	Domain       string        // the cluster's domain: accounts are user@Domain
	Hosts        []string      // names and addresses in the server certificate
	APIAddr      string        // HTTPS API listener
	SIPAddr      string        // SIP over TLS listener
	SIPPhoneAddr string        // SIP over TLS for standard phones; "" next to SIPAddr, "off" none (phones.go)
	CertValidity time.Duration // lifetime of device certificates
	CodeTTL      time.Duration // lifetime of activation codes
	LogLevel     string        // debug, info, warn, error
	MetricsAddr  string        // /metrics, /healthz, /readyz over plain HTTP; "off" none (ops.go)

	// Password attempt limits: per device (profile unlock), per account
	// (the unlocks of all its devices) and per account for new-device
	// logins, which are counted apart so they never lock out devices.
	DeviceAttempts  throttle.Policy
	AccountAttempts throttle.Policy
	LoginAttempts   throttle.Policy
	LoginPoWBits    int // zero bits of the proof of work a login needs after LoginAttempts.HumanAfter failures

	// KDFMinLogN is the weakest scrypt cost (log2 N) the node accepts for an
	// account's password.
	KDFMinLogN int

	// Messaging limits per account.
	MessageRate    float64 // MESSAGEs per second a sending account may average
	MessageBurst   int     // and burst
	MaxStoredBytes int64   // bytes of undelivered copies held for one account
	// MessageStoreFirst stores every copy before the sender's 200, even
	// for devices online and idle, which otherwise get it first.
	MessageStoreFirst bool

	// SIP listener limits against hostile clients.
	SIP SIPLimits
	// TLS 1.3 SIP connections leave crypto/tls after the handshake (config_sip_tls.go).
	SIPTLSTakeover bool

	// STUN/TURN relay (config_relay.go).
	Relay RelayConfig
	// File service: slots, sizes, quotas and expiry (docs/files-node.md).
	Files files.Limits
	// Directory zone (config_dns.go).
	DNS DNSConfig
	// Number directory: claims, replacement delay, query budget (config_directory.go).
	Directory directory.Limits
	// Admin web panel (config_admin.go).
	Admin AdminConfig
	// Routing between nodes over NATS (config_cluster.go).
	Cluster ClusterConfig
}

// SIPLimits bound what clients may hold on the SIP port.
type SIPLimits struct {
	MaxConns          int           // connections in total (lowered to fit the file descriptor limit)
	MaxConnsPerSource int           // connections per source IP address
	HandshakeTimeout  time.Duration // TLS handshake
	ReadTimeout       time.Duration // a request must arrive whole within it
	IdleTimeout       time.Duration // a connection without a live registration and without a message
	UnauthRate        float64       // unauthenticated requests per second per source IP
	UnauthBurst       int
}

// Defaults returns a Config with every default set.
func Defaults(dir string) Config {
	return Config{
		DataDir:      dir,
		Domain:       "localhost",
		Hosts:        []string{"localhost", "127.0.0.1"},
		APIAddr:      "127.0.0.1:8443",
		SIPAddr:      "127.0.0.1:5061",
		CertValidity: 365 * 24 * time.Hour,
		CodeTTL:      7 * 24 * time.Hour,
		LogLevel:     "info",
		MetricsAddr:  DefaultMetricsAddr,

		DeviceAttempts:  throttle.DeviceDefault,
		AccountAttempts: throttle.AccountDefault,
		LoginAttempts:   throttle.LoginDefault,
		LoginPoWBits:    20,
		KDFMinLogN:      kdf.MinParams.LogN,

		MessageRate:    50,
		MessageBurst:   200,
		MaxStoredBytes: 64 << 20,

		SIP: SIPLimits{MaxConns: 10000, MaxConnsPerSource: 200, HandshakeTimeout: 10 * time.Second,
			ReadTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, UnauthRate: 20, UnauthBurst: 100},

		SIPTLSTakeover: true,

		Relay: relayDefaults(),
		Files: files.DefaultLimits,
		DNS:   dnsDefaults(),

		Directory: directory.DefaultLimits,
		Admin:     adminDefaults(),
	}
}

// Validate checks every field.
func (c Config) Validate() error {
	var errs []error
	if err := ident.CheckDomain(c.Domain); err != nil {
		errs = append(errs, fmt.Errorf("domain: %w", err))
	}
	for _, a := range []struct{ name, v string }{{"api_addr", c.APIAddr}, {"sip_addr", c.SIPAddr}, {"sip_phone_addr", c.PhoneAddr()}} {
		if a.v == "" {
			continue // phones off
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.name, a.v, err))
		}
	}
	if c.CertValidity < 5*time.Second || c.CertValidity > 10*365*24*time.Hour {
		errs = append(errs, fmt.Errorf("cert_validity %v: must be between 5s and 10 years", c.CertValidity))
	}
	if c.CodeTTL < time.Second {
		errs = append(errs, fmt.Errorf("code_ttl %v: too short", c.CodeTTL))
	}
	for _, p := range []struct {
		name string
		p    throttle.Policy
	}{{"device", c.DeviceAttempts}, {"account", c.AccountAttempts}, {"login", c.LoginAttempts}} {
		if p.p.Free < 1 || p.p.LockAfter <= p.p.Free || p.p.BaseDelay <= 0 || p.p.MaxDelay < p.p.BaseDelay {
			errs = append(errs, fmt.Errorf("%s attempt limits: need 1 <= free < lock_after, 0 < delay <= max_delay", p.name))
		}
	}
	if h := c.LoginAttempts.HumanAfter; h != 0 && (h < c.LoginAttempts.Free || h >= c.LoginAttempts.LockAfter) {
		errs = append(errs, fmt.Errorf("login_attempts_human %d: 0 (never), or between login_attempts_free and login_attempts_lock", h))
	}
	if c.LoginPoWBits < 1 || c.LoginPoWBits > pow.MaxBits {
		errs = append(errs, fmt.Errorf("login_pow_bits %d: between 1 and %d", c.LoginPoWBits, pow.MaxBits))
	}
	if c.KDFMinLogN < 14 || c.KDFMinLogN > 22 {
		errs = append(errs, fmt.Errorf("kdf_min_log_n %d: between 14 and 22", c.KDFMinLogN))
	}
	if c.MessageRate <= 0 || c.MessageBurst < 1 || c.MaxStoredBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("message limits: message_rate > 0, message_burst >= 1, max_stored_bytes >= 1024"))
	}
	if s := c.SIP; s.MaxConns < 1 || s.MaxConnsPerSource < 1 || s.HandshakeTimeout < 100*time.Millisecond ||
		s.ReadTimeout < 100*time.Millisecond || s.IdleTimeout < 100*time.Millisecond || s.UnauthRate <= 0 || s.UnauthBurst < 1 {
		errs = append(errs, fmt.Errorf("sip limits: connections >= 1, timeouts >= 100ms, sip_unauth_rate > 0, sip_unauth_burst >= 1"))
	}
	if err := c.validateStore(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Cluster.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Relay.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.DNS.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Admin.validate(); err != nil {
		errs = append(errs, err)
	}
	if f := c.Files; f.MaxSlots < 1 || f.MaxSlots > 64 || f.SlotTTL < time.Second || f.TakeTTL < time.Second || f.Expiry < time.Second ||
		f.MaxFileSize < 1 || f.Quota < f.MaxFileSize || f.PairCap < 1 {
		errs = append(errs, fmt.Errorf("file limits: 1 <= file_slots_max <= 64, ttls and expiry >= 1s, file_max_size >= 1, file_quota >= file_max_size, file_pair_cap >= 1"))
	}
	if err := c.validateOps(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Directory.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: use debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Encode renders the configuration file, every setting with a comment.
func (c Config) Encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# phonexd configuration. Every setting is written out with its value;\n# durations use Go syntax (90s, 12h, 8760h).\n\n")
	fmt.Fprintf(&b, "# Accounts of this cluster are user@domain.\ndomain = %s\n\n", c.Domain)
	fmt.Fprintf(&b, "# Names and addresses in the server certificate (comma-separated).\nhosts = %s\n\n", strings.Join(c.Hosts, ", "))
	c.encodeStore(&b)
	fmt.Fprintf(&b, "# HTTPS API (enrollment, unlock, contacts), mutual TLS after enrollment.\napi_addr = %s\n\n", c.APIAddr)
	fmt.Fprintf(&b, "# SIP over TLS (messaging and calls).\nsip_addr = %s\n\n", c.SIPAddr)
	fmt.Fprintf(&b, "# SIP over TLS for standard phones (digest login, no client certificate asked);\n# empty: the port after sip_addr's; off: no phone port.\nsip_phone_addr = %s\n\n", c.SIPPhoneAddr)
	fmt.Fprintf(&b, "# Lifetime of device certificates; devices renew when a third is left.\ncert_validity = %s\n\n", c.CertValidity)
	fmt.Fprintf(&b, "# Lifetime of activation codes made by 'phonexd user add'.\ncode_ttl = %s\n\n", c.CodeTTL)
	fmt.Fprintf(&b, "# debug, info, warn or error. No level logs message content, keys or passwords.\nlog_level = %s\n\n", c.LogLevel)
	c.encodeOps(&b)
	fmt.Fprintf(&b, "# Password attempts when unlocking a device: free ones, then a delay that doubles\n# from *_delay up to *_max_delay, then lock-out until 'phonexd device unlock'.\n")
	fmt.Fprintf(&b, "device_attempts_free = %d\ndevice_attempts_lock = %d\ndevice_attempts_delay = %s\ndevice_attempts_max_delay = %s\n\n",
		c.DeviceAttempts.Free, c.DeviceAttempts.LockAfter, c.DeviceAttempts.BaseDelay, c.DeviceAttempts.MaxDelay)
	fmt.Fprintf(&b, "# The same per account, across the unlocks of all its devices.\n")
	fmt.Fprintf(&b, "account_attempts_free = %d\naccount_attempts_lock = %d\naccount_attempts_delay = %s\naccount_attempts_max_delay = %s\n\n",
		c.AccountAttempts.Free, c.AccountAttempts.LockAfter, c.AccountAttempts.BaseDelay, c.AccountAttempts.MaxDelay)
	fmt.Fprintf(&b, "# New-device logins ('phonex login'), counted per account apart from unlocks so that\n# they never lock out existing devices. After login_attempts_human failures each\n# further login needs a proof of work of login_pow_bits zero bits (0: never).\n")
	fmt.Fprintf(&b, "login_attempts_free = %d\nlogin_attempts_lock = %d\nlogin_attempts_delay = %s\nlogin_attempts_max_delay = %s\nlogin_attempts_human = %d\nlogin_pow_bits = %d\n\n",
		c.LoginAttempts.Free, c.LoginAttempts.LockAfter, c.LoginAttempts.BaseDelay, c.LoginAttempts.MaxDelay, c.LoginAttempts.HumanAfter, c.LoginPoWBits)
	fmt.Fprintf(&b, "# Weakest scrypt cost (log2 N) accepted for an account password.\nkdf_min_log_n = %d\n", c.KDFMinLogN)
	fmt.Fprintf(&b, "\n# Messaging limits per account: MESSAGEs per second (average and burst) a sender\n# may send, and bytes of undelivered copies the cluster holds for one recipient.\n")
	fmt.Fprintf(&b, "message_rate = %g\nmessage_burst = %d\nmax_stored_bytes = %d\n", c.MessageRate, c.MessageBurst, c.MaxStoredBytes)
	fmt.Fprintf(&b, "# A MESSAGE for devices that are all online here and idle goes to them before\n# the sender's 200, unstored; true stores every copy first (docs/delivery.md).\nmessage_store_first = %t\n", c.MessageStoreFirst)
	fmt.Fprintf(&b, "\n# SIP port limits: connections in total and per source IP address; the TLS\n# handshake, a whole request, and an idle connection without a registration\n# must end within their timeouts; unauthenticated requests per second per\n# source IP (average and burst).\n")
	fmt.Fprintf(&b, "sip_max_connections = %d\nsip_max_connections_per_source = %d\nsip_handshake_timeout = %s\nsip_read_timeout = %s\nsip_idle_timeout = %s\nsip_unauth_rate = %g\nsip_unauth_burst = %d\n",
		c.SIP.MaxConns, c.SIP.MaxConnsPerSource, c.SIP.HandshakeTimeout, c.SIP.ReadTimeout, c.SIP.IdleTimeout, c.SIP.UnauthRate, c.SIP.UnauthBurst)
	c.encodeSIPTLS(&b)
	c.Relay.encode(&b)
	fmt.Fprintf(&b, "\n# Files: half-key slots a device may hold per contact, how long a ready slot\n# lives and how long a sender has from taking a slot to starting the upload;\n# how long a file is kept (it goes sooner once every device has it); the\n# largest file, bytes of files per sending account, and files waiting from\n# one account to another.\n")
	fmt.Fprintf(&b, "file_slots_max = %d\nfile_slot_ttl = %s\nfile_take_ttl = %s\nfile_expiry = %s\nfile_max_size = %d\nfile_quota = %d\nfile_pair_cap = %d\n",
		c.Files.MaxSlots, c.Files.SlotTTL, c.Files.TakeTTL, c.Files.Expiry, c.Files.MaxFileSize, c.Files.Quota, c.Files.PairCap)
	c.DNS.encode(&b)
	encodeDirectory(c.Directory, &b)
	c.Admin.encode(&b)
	c.Cluster.encode(&b)
	return b.Bytes()
}

// ParseConfig reads a configuration file's contents over the defaults.
func ParseConfig(dir string, data []byte) (Config, error) {
	c := Defaults(dir)
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return c, fmt.Errorf("%s line %d: want key = value", ConfigFile, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var err error
		switch k {
		case "domain":
			c.Domain = strings.ToLower(v)
		case "hosts":
			c.Hosts = nil
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					c.Hosts = append(c.Hosts, h)
				}
			}
		case "store":
			c.Store = v
		case "api_addr":
			c.APIAddr = v
		case "sip_addr":
			c.SIPAddr = v
		case "sip_phone_addr":
			c.SIPPhoneAddr = v
		case "cert_validity":
			c.CertValidity, err = time.ParseDuration(v)
		case "code_ttl":
			c.CodeTTL, err = time.ParseDuration(v)
		case "log_level":
			c.LogLevel = v
		case "metrics_addr":
			c.MetricsAddr = v
		case "device_attempts_free":
			c.DeviceAttempts.Free, err = strconv.Atoi(v)
		case "device_attempts_lock":
			c.DeviceAttempts.LockAfter, err = strconv.Atoi(v)
		case "device_attempts_delay":
			c.DeviceAttempts.BaseDelay, err = time.ParseDuration(v)
		case "device_attempts_max_delay":
			c.DeviceAttempts.MaxDelay, err = time.ParseDuration(v)
		case "account_attempts_free":
			c.AccountAttempts.Free, err = strconv.Atoi(v)
		case "account_attempts_lock":
			c.AccountAttempts.LockAfter, err = strconv.Atoi(v)
		case "account_attempts_delay":
			c.AccountAttempts.BaseDelay, err = time.ParseDuration(v)
		case "account_attempts_max_delay":
			c.AccountAttempts.MaxDelay, err = time.ParseDuration(v)
		case "login_attempts_free":
			c.LoginAttempts.Free, err = strconv.Atoi(v)
		case "login_attempts_lock":
			c.LoginAttempts.LockAfter, err = strconv.Atoi(v)
		case "login_attempts_delay":
			c.LoginAttempts.BaseDelay, err = time.ParseDuration(v)
		case "login_attempts_max_delay":
			c.LoginAttempts.MaxDelay, err = time.ParseDuration(v)
		case "login_attempts_human":
			c.LoginAttempts.HumanAfter, err = strconv.Atoi(v)
		case "login_pow_bits":
			c.LoginPoWBits, err = strconv.Atoi(v)
		case "kdf_min_log_n":
			c.KDFMinLogN, err = strconv.Atoi(v)
		case "message_rate":
			c.MessageRate, err = strconv.ParseFloat(v, 64)
		case "message_burst":
			c.MessageBurst, err = strconv.Atoi(v)
		case "max_stored_bytes":
			c.MaxStoredBytes, err = strconv.ParseInt(v, 10, 64)
		case "message_store_first":
			c.MessageStoreFirst, err = strconv.ParseBool(v)
		case "sip_max_connections":
			c.SIP.MaxConns, err = strconv.Atoi(v)
		case "sip_max_connections_per_source":
			c.SIP.MaxConnsPerSource, err = strconv.Atoi(v)
		case "sip_handshake_timeout":
			c.SIP.HandshakeTimeout, err = time.ParseDuration(v)
		case "sip_read_timeout":
			c.SIP.ReadTimeout, err = time.ParseDuration(v)
		case "sip_idle_timeout":
			c.SIP.IdleTimeout, err = time.ParseDuration(v)
		case "sip_unauth_rate":
			c.SIP.UnauthRate, err = strconv.ParseFloat(v, 64)
		case "sip_unauth_burst":
			c.SIP.UnauthBurst, err = strconv.Atoi(v)
		case "file_slots_max":
			c.Files.MaxSlots, err = strconv.Atoi(v)
		case "file_slot_ttl":
			c.Files.SlotTTL, err = time.ParseDuration(v)
		case "file_take_ttl":
			c.Files.TakeTTL, err = time.ParseDuration(v)
		case "file_expiry":
			c.Files.Expiry, err = time.ParseDuration(v)
		case "file_max_size":
			c.Files.MaxFileSize, err = strconv.ParseInt(v, 10, 64)
		case "file_quota":
			c.Files.Quota, err = strconv.ParseInt(v, 10, 64)
		case "file_pair_cap":
			c.Files.PairCap, err = strconv.Atoi(v)
		default:
			var ok bool
			if ok, err = c.parseSIPTLS(k, v); !ok && err == nil {
				ok, err = c.Relay.parse(k, v)
			}
			if !ok && err == nil {
				ok, err = c.DNS.parse(k, v)
			}
			if !ok && err == nil {
				ok, err = c.Admin.parse(k, v)
			}
			if !ok {
				ok, err = parseDirectory(&c.Directory, k, v)
			}
			if !ok {
				ok = c.Cluster.parse(k, v)
			}
			if !ok {
				return c, fmt.Errorf("%s line %d: unknown setting %q", ConfigFile, line, k)
			}
		}
		if err != nil {
			return c, fmt.Errorf("%s line %d: %s: %w", ConfigFile, line, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// LoadConfig reads dir's configuration file.
func LoadConfig(dir string) (Config, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("%s is not a phonexd data directory (run phonexd init --data %s): %w", dir, dir, err)
		}
		return Config{}, err
	}
	return ParseConfig(dir, data)
}
