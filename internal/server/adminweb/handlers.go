package adminweb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/qrcard"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/server/adminauth"
	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/store"
)

// Security headers of every answer: no script at all, styles and images
// from the panel only, no framing (CSP frame-ancestors and, for older
// browsers, X-Frame-Options), forms posting only to the panel; pages
// holding activation codes and credentials are never cached.
var securityHeaders = map[string]string{
	"Content-Security-Policy":    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
	"X-Frame-Options":            "DENY",
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"Cache-Control":              "no-store",
	"Strict-Transport-Security":  "max-age=31536000",
	"Cross-Origin-Opener-Policy": "same-origin",
}

type ctxKey struct{}

func sessionOf(r *http.Request) adminauth.Session {
	s, _ := r.Context().Value(ctxKey{}).(adminauth.Session)
	return s
}

// Handler serves the panel.
func (p *Panel) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", p.static)
	mux.HandleFunc("GET /login", p.loginPage)
	mux.HandleFunc("POST /login", p.login)
	authed := http.NewServeMux()
	authed.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/accounts", http.StatusSeeOther) })
	authed.HandleFunc("POST /logout", p.logout)
	authed.HandleFunc("GET /reauth", p.reauthPage)
	authed.HandleFunc("POST /reauth", p.reauth)
	authed.HandleFunc("GET /accounts", p.accounts)
	authed.HandleFunc("POST /accounts", p.createAccount)
	authed.HandleFunc("GET /accounts/{user}", p.account)
	authed.HandleFunc("GET /accounts/{user}/remove", p.removePage)
	authed.HandleFunc("POST /accounts/{user}/{action}", p.accountAction)
	authed.HandleFunc("POST /devices/{user}/{device}/{action}", p.deviceAction)
	authed.HandleFunc("GET /policies", p.policiesPage)
	authed.HandleFunc("POST /policies", p.setPolicy)
	authed.HandleFunc("GET /groups", p.groupsPage)
	authed.HandleFunc("POST /groups", p.createGroup)
	authed.HandleFunc("GET /groups/{group}", p.groupPage)
	authed.HandleFunc("POST /groups/{group}/{action}", p.groupAction)
	authed.HandleFunc("GET /live", p.livePage)
	authed.HandleFunc("GET /live/chart.svg", p.chart)
	authed.HandleFunc("GET /audit", p.auditPage)
	mux.Handle("/", p.requireSession(authed))
	// Cross-origin POSTs are refused by Sec-Fetch-Site or Origin before
	// any handler runs, sign-in included (login CSRF); the session's
	// token is checked after.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.log.Warn("admin panel: cross-origin request refused", "path", r.URL.Path, "source", r.RemoteAddr)
		http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
	}))
	return p.headers(cop.Handler(mux))
}

func (p *Panel) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		h.ServeHTTP(w, r)
	})
}

// requireSession lets signed-in administrators through, checks the
// synchronizer token of every POST, and sends the others to sign in.
func (p *Panel) requireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		var s adminauth.Session
		if err == nil {
			s, err = p.auth.Session(r.Context(), c.Value)
		}
		if err != nil {
			if !errors.Is(err, adminauth.ErrNoSession) && !errors.Is(err, http.ErrNoCookie) {
				p.log.Error("admin panel: session", "err", err)
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !s.ValidCSRF(r.PostFormValue("csrf")) {
				p.audit(r.Context(), s.Admin, "admin.refused-csrf", r.URL.Path, "request without the session's form token")
				http.Error(w, "forbidden: missing or wrong form token", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

// audit records what the panel does outside the operator service (sign-in,
// sign-out, refusals) in the operator audit log; the service records the
// account and device actions itself.
func (p *Panel) audit(ctx context.Context, actor, action, target, detail string) {
	if err := p.adm.Operator().Record(ctx, operator.Actor(actor), action, target, detail); err != nil {
		p.log.Error("admin panel: audit log", "err", err)
	}
}

// as is the shared service acting for the signed-in administrator.
func (p *Panel) as(r *http.Request) *server.Admin {
	return p.adm.As(operator.Actor(sessionOf(r).Admin))
}

// unauthenticated is the audit actor of refusals before a sign-in.
const unauthenticated = "panel"

// nameTarget is a typed administrator name as an audit target: kept when
// it is a valid name, else replaced, so the log holds no arbitrary input.
func nameTarget(n string) string {
	if adminauth.ValidName(n) {
		return n
	}
	return "(invalid name)"
}

// view is what every page template gets.
type view struct {
	Title   string
	Admin   string
	CSRF    string
	Flash   string
	Error   string
	Data    any
	Refresh int // seconds; 0 none
}

func (p *Panel) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	s := sessionOf(r)
	v.Admin, v.CSRF = s.Admin, s.CSRF
	if v.Flash == "" {
		v.Flash = flashes[r.URL.Query().Get("done")]
	}
	var b bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&b, "layout.html", v); err != nil {
		p.log.Error("admin panel: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// flashes are the results a redirect after an action shows (?done=).
var flashes = map[string]string{
	"disable": "Account disabled.", "enable": "Account enabled.", "unlock": "Lock-outs and throttling reset.",
	"remove": "Account removed.", "revoke": "Device revoked.", "device-unlock": "Device unlocked.",
	"contact-add": "Contact added.", "contact-remove": "Contact removed.",
	"policy": "Policy changed; running nodes apply it within a second.", "group-add": "Group created.", "group-remove": "Group removed.",
	"add-member": "Member added.", "remove-member": "Member removed.",
}

// fail shows an error on a page of its own, with the status it calls for.
func (p *Panel) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, store.ErrExists):
		status = http.StatusConflict
	case errors.Is(err, errInternal):
		status = http.StatusInternalServerError
	}
	p.render(w, r, status, "error.html", view{Title: "Error", Error: err.Error()})
}

var errInternal = errors.New("internal error")

// safeNext keeps a redirect target on the panel: a path, not a URL.
func safeNext(next, def string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return def
	}
	return next
}

// loginForm is the sign-in form.
type loginForm struct {
	Name, Password, Code, Next string
}

func parseLogin(f url.Values) (loginForm, error) {
	l := loginForm{Name: strings.TrimSpace(f.Get("name")), Password: f.Get("password"), Code: strings.TrimSpace(f.Get("code")), Next: safeNext(f.Get("next"), "/accounts")}
	if l.Name == "" || l.Password == "" || l.Code == "" {
		return l, errors.New("name, password and one-time code are all needed")
	}
	if len(l.Name) > 64 || len(l.Password) > 1024 || len(l.Code) > 16 {
		return l, errors.New("a field is too long")
	}
	return l, nil
}

func (p *Panel) loginPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "login.html", view{Title: "Sign in", Data: safeNext(r.URL.Query().Get("next"), "/accounts")})
}

func (p *Panel) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.render(w, r, http.StatusBadRequest, "login.html", view{Title: "Sign in", Error: "unreadable form", Data: "/accounts"})
		return
	}
	l, err := parseLogin(r.PostForm)
	if err != nil {
		p.render(w, r, http.StatusBadRequest, "login.html", view{Title: "Sign in", Error: err.Error(), Data: l.Next})
		return
	}
	if !p.allowSource(r) {
		w.Header().Set("Retry-After", "10")
		p.render(w, r, http.StatusTooManyRequests, "login.html", view{Title: "Sign in", Error: "too many sign-in attempts from this address; wait a few seconds", Data: l.Next})
		return
	}
	if err := p.auth.Check(r.Context(), l.Name, l.Password, l.Code); err != nil {
		if !errors.Is(err, adminauth.ErrSignIn) {
			p.log.Error("admin panel: sign-in", "err", err)
		}
		p.audit(r.Context(), unauthenticated, "admin.signin-refused", nameTarget(l.Name), strings.TrimPrefix(err.Error(), adminauth.ErrSignIn.Error()+" "))
		p.render(w, r, http.StatusUnauthorized, "login.html", view{Title: "Sign in", Error: adminauth.ErrSignIn.Error(), Data: l.Next})
		return
	}
	s, err := p.auth.Start(r.Context(), l.Name)
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	// A session that was already open in this browser ends: the new one
	// replaces it (no fixation of an earlier value).
	if c, err := r.Cookie(CookieName); err == nil {
		p.auth.End(r.Context(), c.Value)
	}
	setCookie(w, s.ID)
	p.audit(r.Context(), l.Name, "admin.signin", l.Name, "")
	http.Redirect(w, r, l.Next, http.StatusSeeOther)
}

func setCookie(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (p *Panel) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	p.auth.End(r.Context(), s.ID)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	p.audit(r.Context(), s.Admin, "admin.signout", s.Admin, "")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// fresh reports whether the session signed in recently enough for a
// destructive action; if not, it sends the browser to sign in again,
// coming back to next.
func (p *Panel) fresh(w http.ResponseWriter, r *http.Request, next string) bool {
	if p.now().Sub(sessionOf(r).AuthAt) <= p.FreshFor {
		return true
	}
	http.Redirect(w, r, "/reauth?next="+url.QueryEscape(next), http.StatusSeeOther)
	return false
}

func (p *Panel) reauthPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "reauth.html", view{Title: "Confirm it is you", Data: safeNext(r.URL.Query().Get("next"), "/accounts")})
}

// reauth checks the password and a new code again and replaces the
// session by a fresh one.
func (p *Panel) reauth(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	f := r.PostForm
	f.Set("name", s.Admin)
	l, err := parseLogin(f)
	if err != nil {
		p.render(w, r, http.StatusBadRequest, "reauth.html", view{Title: "Confirm it is you", Error: err.Error(), Data: l.Next})
		return
	}
	if err := p.auth.Check(r.Context(), s.Admin, l.Password, l.Code); err != nil {
		p.audit(r.Context(), s.Admin, "admin.reauth-refused", s.Admin, "")
		p.render(w, r, http.StatusUnauthorized, "reauth.html", view{Title: "Confirm it is you", Error: adminauth.ErrSignIn.Error(), Data: l.Next})
		return
	}
	ns, err := p.auth.Start(r.Context(), s.Admin)
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	p.auth.End(r.Context(), s.ID)
	setCookie(w, ns.ID)
	p.audit(r.Context(), s.Admin, "admin.reauth", s.Admin, "")
	http.Redirect(w, r, l.Next, http.StatusSeeOther)
}

// listQuery is the account list's search and the cursor of its page (the
// last name of the page before).
type listQuery struct {
	Q, After string
}

func parseList(q url.Values) listQuery {
	l := listQuery{Q: strings.TrimSpace(q.Get("q")), After: q.Get("after")}
	if len(l.Q) > 256 {
		l.Q = l.Q[:256]
	}
	if len(l.After) > 512 {
		l.After = ""
	}
	return l
}

type accountsData struct {
	Query   listQuery
	Rows    []operator.UserInfo
	Total   int
	Next    string // link to the next page, "" on the last
	First   string // link to the first page, "" on it
	Domain  string
	Created *createdData
}

type createdData struct {
	server.Activation
	Server, Fingerprint string
	Card                template.HTML // the QR enrollment card, inline SVG
}

func (p *Panel) accounts(w http.ResponseWriter, r *http.Request) {
	d, err := p.accountsData(r.Context(), parseList(r.URL.Query()))
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	p.render(w, r, http.StatusOK, "accounts.html", view{Title: "Accounts", Data: d})
}

func (p *Panel) accountsData(ctx context.Context, q listQuery) (accountsData, error) {
	pg, err := p.adm.Operator().UsersPage(ctx, q.Q, q.After, PageSize)
	if err != nil {
		return accountsData{}, err
	}
	d := accountsData{Query: q, Rows: pg.Users, Total: pg.Total, Domain: p.adm.Config().Domain}
	link := func(after string) string {
		v := url.Values{}
		if q.Q != "" {
			v.Set("q", q.Q)
		}
		if after != "" {
			v.Set("after", after)
		}
		return "/accounts?" + v.Encode()
	}
	if pg.Next != "" {
		d.Next = link(pg.Next)
	}
	if q.After != "" {
		d.First = link("")
	}
	return d, nil
}

// createForm is the new-account form.
type createForm struct {
	User    string
	Expires time.Duration
}

func parseCreate(f url.Values, domain string) (createForm, error) {
	c := createForm{User: strings.ToLower(strings.TrimSpace(f.Get("user")))}
	if c.User == "" {
		return c, errors.New("an account name is needed")
	}
	if !strings.Contains(c.User, "@") {
		c.User += "@" + domain
	}
	if e := strings.TrimSpace(f.Get("expires")); e != "" {
		d, err := time.ParseDuration(e)
		if err != nil || d < time.Minute || d > 90*24*time.Hour {
			return c, errors.New("code lifetime must be a duration between 1m and 2160h (for example 168h)")
		}
		c.Expires = d
	}
	return c, nil
}

func (p *Panel) createAccount(w http.ResponseWriter, r *http.Request) {
	c, err := parseCreate(r.PostForm, p.adm.Config().Domain)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	act, err := p.as(r).AddUser(r.Context(), c.User, c.Expires)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	addr, fp, err := p.adm.EnrollTarget()
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	d, err := p.accountsData(r.Context(), listQuery{Q: act.User})
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	d.Created = &createdData{Activation: act, Server: addr, Fingerprint: fp}
	// The card carries the code: it is drawn into this answer only (never
	// cached: no-store), as the code itself is.
	card := qrcard.Card{User: act.User, Server: addr, CA: fp, Code: act.Code}
	if err := card.Check(); err != nil {
		p.log.Error("admin panel: enrollment card", "err", err)
	} else if svg, err := card.SVG(); err != nil {
		p.log.Error("admin panel: enrollment card", "err", err)
	} else {
		d.Created.Card = template.HTML(svg) // made by qrcard from checked fields, escaped there
	}
	p.render(w, r, http.StatusCreated, "accounts.html", view{Title: "Account created", Data: d})
}

type accountData struct {
	Summary server.AccountSummary
	Devices []deviceLine
	Phone   *server.SIPDevice
	Policy  []policyLine
	Keys    []operator.Key
}

type deviceLine struct {
	server.DeviceInfo
	Registered string // yes, no, or "-" when the panel runs outside the node
}

func (p *Panel) account(w http.ResponseWriter, r *http.Request) {
	d, err := p.accountData(r.Context(), r.PathValue("user"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "account.html", view{Title: d.Summary.User, Data: d})
}

func (p *Panel) accountData(ctx context.Context, user string) (accountData, error) {
	sum, err := p.adm.Summary(ctx, user)
	if err != nil {
		return accountData{}, err
	}
	ds, err := p.adm.Devices(ctx, user)
	if err != nil {
		return accountData{}, err
	}
	pol, err := p.policyLines(ctx, user, "")
	if err != nil {
		return accountData{}, err
	}
	d := accountData{Summary: sum, Policy: pol, Keys: operator.Keys}
	for _, x := range ds {
		l := deviceLine{DeviceInfo: x, Registered: "-"}
		if p.registered != nil {
			if reg, known := p.registered(ctx, x.Device); known {
				l.Registered = map[bool]string{true: "yes", false: "no"}[reg]
			}
		}
		d.Devices = append(d.Devices, l)
	}
	return d, nil
}

func (p *Panel) removePage(w http.ResponseWriter, r *http.Request) {
	sum, err := p.adm.Summary(r.Context(), r.PathValue("user"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "remove.html", view{Title: "Remove " + sum.User, Data: sum})
}

// parseContact reads the contact form: a contact account and whether it is
// added or removed.
func parseContact(f url.Values, domain string) (contact string, add bool, err error) {
	contact = strings.ToLower(strings.TrimSpace(f.Get("contact")))
	if contact == "" {
		return "", false, errors.New("a contact account is needed")
	}
	if len(contact) > 255 {
		return "", false, errors.New("contact name too long")
	}
	if !strings.Contains(contact, "@") {
		contact += "@" + domain
	}
	switch f.Get("op") {
	case "add":
		return contact, true, nil
	case "remove":
		return contact, false, nil
	}
	return "", false, errors.New("op must be add or remove")
}

// parsePhone reads the add-a-standard-phone form.
func parsePhone(f url.Values) (string, error) {
	n := strings.ToLower(strings.TrimSpace(f.Get("name")))
	if n == "" {
		return "", errors.New("a device name is needed")
	}
	return n, nil
}

func (p *Panel) accountAction(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	back := "/accounts/" + url.PathEscape(user)
	var err error
	switch action := r.PathValue("action"); action {
	case "disable", "enable":
		if err = p.as(r).SetUserEnabled(r.Context(), user, action == "enable"); err == nil {
			http.Redirect(w, r, back+"?done="+action, http.StatusSeeOther)
			return
		}
	case "unlock":
		if err = p.as(r).Unlock(r.Context(), user); err == nil {
			http.Redirect(w, r, back+"?done=unlock", http.StatusSeeOther)
			return
		}
	case "remove":
		if r.PostForm.Get("confirm") != user {
			err = fmt.Errorf("type the account name %s to confirm its removal", user)
			break
		}
		if !p.fresh(w, r, back+"/remove") {
			return
		}
		if err = p.as(r).RemoveUser(r.Context(), user); err == nil {
			http.Redirect(w, r, "/accounts?done=remove", http.StatusSeeOther)
			return
		}
	case "contacts":
		// For accounts with only standard phones, as 'phonexd contacts':
		// the panel adds or removes one contact but never lists them, and
		// the audit entry does not name the contact.
		contact, add, perr := parseContact(r.PostForm, p.adm.Config().Domain)
		if err = perr; err != nil {
			break
		}
		if add {
			err = p.as(r).AddContact(r.Context(), user, contact)
		} else {
			err = p.as(r).RemoveContact(r.Context(), user, contact)
		}
		if err == nil {
			op := map[bool]string{true: "add", false: "remove"}[add]
			http.Redirect(w, r, back+"?done=contact-"+op, http.StatusSeeOther)
			return
		}
	case "phones":
		var name string
		if name, err = parsePhone(r.PostForm); err != nil {
			break
		}
		var ph server.SIPDevice
		if ph, err = p.as(r).AddSIPDevice(r.Context(), user, name); err == nil {
			d, derr := p.accountData(r.Context(), user)
			if derr != nil {
				err = derr
				break
			}
			d.Phone = &ph
			p.render(w, r, http.StatusCreated, "account.html", view{Title: d.Summary.User, Data: d})
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	p.fail(w, r, err)
}

func (p *Panel) deviceAction(w http.ResponseWriter, r *http.Request) {
	user, dev := r.PathValue("user"), r.PathValue("device")
	full := user + "/" + dev
	back := "/accounts/" + url.PathEscape(user)
	var err error
	switch action := r.PathValue("action"); action {
	case "revoke":
		if !p.fresh(w, r, back) {
			return
		}
		if err = p.as(r).RevokeDevice(r.Context(), full); err == nil {
			http.Redirect(w, r, back+"?done=revoke", http.StatusSeeOther)
			return
		}
	case "unlock":
		if err = p.as(r).Unlock(r.Context(), full); err == nil {
			http.Redirect(w, r, back+"?done=device-unlock", http.StatusSeeOther)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	p.fail(w, r, err)
}

type liveData struct {
	Now     sample
	Running bool
	Samples int
}

func (p *Panel) livePage(w http.ResponseWriter, r *http.Request) {
	p.sample(r.Context())
	last, n := p.samples.last()
	p.render(w, r, http.StatusOK, "live.html", view{Title: "Live state", Refresh: 30, Data: liveData{Now: last, Running: p.live != nil, Samples: n}})
}

func (p *Panel) chart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write(p.samples.svg(r.URL.Query().Get("series")))
}

type auditData struct {
	Entries []operator.AuditLine
	Since   string
}

// auditSince reads the audit page's period: a duration back from now
// (24h by default) or "all".
func auditSince(v string, now time.Time) (time.Time, string) {
	if v == "all" {
		return time.Time{}, v
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 100*365*24*time.Hour {
		d, v = 24*time.Hour, "24h"
	}
	return now.Add(-d), v
}

// auditPage shows the operator audit log (the commands' and the panel's
// actions), newest first.
func (p *Panel) auditPage(w http.ResponseWriter, r *http.Request) {
	since, label := auditSince(r.URL.Query().Get("since"), p.now())
	es, err := p.adm.Operator().Audit(r.Context(), since, 200)
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	slices.Reverse(es)
	p.render(w, r, http.StatusOK, "audit.html", view{Title: "Audit log", Data: auditData{Entries: es, Since: label}})
}
