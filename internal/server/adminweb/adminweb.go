// Package adminweb is the operator's web panel of a node: server-rendered
// pages (html/template, no script) over the same service the phonexd
// commands use (server.Admin), administrators signed in with a password
// and a TOTP code (adminauth), and the node's live figures.
//
// Every state-changing request is a POST that must carry the session's
// synchronizer token and come from the panel's own origin; destructive
// actions also need a fresh sign-in. Every action is written to the audit
// log. Pages show counts, never message content, contact names or keys.
package adminweb

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/server/adminauth"
	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName has the __Host- prefix: the browser keeps it only if it was
// set Secure, from HTTPS, with Path=/ and no Domain (RFC 6265bis §4.1.3.2),
// so no other host of the domain can plant or read it.
const CookieName = "__Host-phonexd-admin"

// PageSize is the accounts listed per page.
const PageSize = 50

// Panel is the admin web panel.
type Panel struct {
	adm  *server.Admin
	st   store.Store
	auth *adminauth.Service
	live func() server.Live // nil outside a serving node
	// registered reports a device's live SIP binding; nil outside a
	// serving node.
	registered func(ctx context.Context, device string) (bool, bool)
	log        *slog.Logger
	now        func() time.Time

	// FreshFor is how recent the last password and code check must be for
	// a destructive action.
	FreshFor time.Duration

	pages   map[string]*template.Template
	static  http.Handler
	samples *sampler

	mu      sync.Mutex
	sources map[string]*rate.Limiter // sign-in attempts per source address
}

// New makes a panel on an admin service. live may be nil.
func New(adm *server.Admin, auth *adminauth.Service, live func() server.Live, log *slog.Logger) (*Panel, error) {
	p := &Panel{adm: adm, st: adm.Store(), auth: auth, live: live, log: log, now: time.Now,
		FreshFor: 5 * time.Minute, pages: map[string]*template.Template{}, sources: map[string]*rate.Limiter{}}
	p.samples = newSampler(120)
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/policyform.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := n[len("templates/"):]
		if name == "layout.html" || name == "policyform.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		p.pages[name] = t
	}
	sub, _ := fs.Sub(staticFS, "static")
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return p, nil
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"add": func(a, b int) int { return a + b },
	// policyForm is the data of the "policyform" template.
	"policyForm": func(csrf, scope, name string, keys []operator.Key) map[string]any {
		return map[string]any{"CSRF": csrf, "Scope": scope, "Name": name, "Keys": keys}
	},
}

// Hook runs the panel on addr inside a serving node (phonexd serve
// --admin-addr), with the node's TLS certificate.
func Hook(addr string) server.Hook {
	return func(ctx context.Context, n *server.Node, ready func(string)) error {
		adm := n.Admin()
		cfg := adm.Config()
		auth := adminauth.NewService(adm.Store(), cfg.Domain)
		auth.IdleTimeout, auth.MaxAge = cfg.Admin.IdleTimeout, cfg.Admin.MaxAge
		auth.LockAfter, auth.LockFor = cfg.Admin.LockAfter, cfg.Admin.LockFor
		p, err := New(adm, auth, n.Live, n.Logger())
		if err != nil {
			return err
		}
		p.FreshFor = cfg.Admin.FreshFor
		p.registered = n.Registered
		tc, err := n.TLSConfig()
		if err != nil {
			return err
		}
		// Browsers carry no device certificate: ask for none.
		tc.ClientAuth = tls.NoClientCert
		addr, public := listenAddr(addr)
		if public {
			p.log.Warn("admin panel listens beyond loopback; keep it on a management network", "addr", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		if ready != nil {
			ready(fmt.Sprintf("admin: https://%s/ (admin panel; sign in with an administrator of 'phonexd admin add')", ln.Addr()))
		}
		return p.Serve(ctx, tls.NewListener(ln, tc))
	}
}

// listenAddr puts an address without a host (":9443") on loopback: the
// panel reaches beyond the machine only when a host is named. public
// reports an address that is not loopback.
func listenAddr(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, false
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), false
	}
	if host == "localhost" {
		return addr, false
	}
	ip := net.ParseIP(host)
	return addr, ip == nil || !ip.IsLoopback()
}

// Serve runs the panel on a (TLS) listener until ctx ends, sampling the
// node's figures for the charts meanwhile.
func (p *Panel) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
	go p.Sample(ctx, 15*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Sample records the node's figures every period until ctx ends, and
// forgets expired sessions.
func (p *Panel) Sample(ctx context.Context, period time.Duration) {
	p.sample(ctx)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.sample(ctx)
			p.auth.Prune(ctx)
		}
	}
}

func (p *Panel) sample(ctx context.Context) {
	c, err := p.st.NodeCounts(ctx)
	if err != nil {
		p.log.Warn("admin panel: node counts", "err", err)
		return
	}
	var l server.Live
	if p.live != nil {
		l = p.live()
	}
	p.samples.add(sample{At: p.now(), Counts: c, Live: l})
}

// allowSource rate-limits sign-in attempts per source address (the
// per-administrator lock-out is in the store): 1 a second, 10 at once.
func (p *Panel) allowSource(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sources) > 10000 {
		clear(p.sources) // bounded memory; a flood only resets its own limits
	}
	l := p.sources[host]
	if l == nil {
		l = rate.NewLimiter(1, 10)
		p.sources[host] = l
	}
	return l.Allow()
}
