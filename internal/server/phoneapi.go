package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/proxy"
	"github.com/phonex/phonex/internal/store"
)

// PathPhoneContacts is the contact list of a standard phone's account over
// the API, authenticated by the phone's digest login (HTTP Digest, RFC
// 7616, MD5 with qop=auth, realm the cluster's domain), for accounts whose
// only devices are phones: GET lists, POST {"user": "bob@domain"} adds,
// DELETE PathPhoneContacts/bob@domain removes.
const PathPhoneContacts = "/v1/phone/contacts"

// phoneRoutes registers the digest-authenticated paths on m.
func (n *Node) phoneRoutes(m *http.ServeMux) {
	// A proxy that never serves: its digest check (nonces, counts,
	// throttles) guards the HTTP paths apart from the SIP port's.
	d, err := n.newProxy()
	if err != nil {
		n.log.Error("phone API off: digest check not ready", "err", err)
		return
	}
	m.HandleFunc("GET "+PathPhoneContacts, n.phoneAuthed(d, n.phoneContacts))
	m.HandleFunc("POST "+PathPhoneContacts, n.phoneAuthed(d, n.phoneContactAdd))
	m.HandleFunc("DELETE "+PathPhoneContacts+"/{user}", n.phoneAuthed(d, n.phoneContactRemove))
}

// phoneAuthed wraps a handler that needs a phone's digest login.
func (n *Node) phoneAuthed(d *proxy.Proxy, h func(ctx context.Context, r *http.Request, id proxy.Identity) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, res := d.VerifyHTTPDigest(r.Context(), r.Header.Get("Authorization"), r.Method, r.URL.RequestURI(), r.RemoteAddr)
		if id == nil {
			if res.Challenge != "" {
				w.Header().Set("WWW-Authenticate", res.Challenge)
			}
			code := map[int]string{400: api.CodeBadRequest, 401: api.CodeWrongPassword, 403: api.CodeWrongPassword, 503: api.CodeThrottled}[res.Status]
			if code == "" {
				code = api.CodeInternal
			}
			n.writeError(w, r, &api.Error{Status: res.Status, Code: code, Message: res.Reason, RetryAfter: math.Ceil(res.RetryAfter.Seconds())})
			return
		}
		v, err := h(r.Context(), r, *id)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, v)
	}
}

func (n *Node) phoneContacts(ctx context.Context, r *http.Request, id proxy.Identity) (any, error) {
	names, err := n.st.Contacts(ctx, id.AccountID)
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = []string{}
	}
	return map[string]any{"account": id.Account, "contacts": names}, nil
}

func (n *Node) phoneContactAdd(ctx context.Context, r *http.Request, id proxy.Identity) (any, error) {
	var req api.ContactAdd
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	acct, err := n.parseLocal(req.User)
	if err != nil {
		return nil, err
	}
	if acct.String() == id.Account {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "you cannot add yourself as a contact")
	}
	a, err := n.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Status == store.StatusPending) {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	if err != nil {
		return nil, err
	}
	if err := n.st.AddContact(ctx, id.AccountID, a.Name, n.now()); err != nil {
		return nil, fmt.Errorf("add contact: %w", err)
	}
	return map[string]string{"added": a.Name}, nil
}

func (n *Node) phoneContactRemove(ctx context.Context, r *http.Request, id proxy.Identity) (any, error) {
	acct, err := ident.ParseAccount(r.PathValue("user"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if err := n.st.RemoveContact(ctx, id.AccountID, acct.String()); errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, api.CodeNotFound, "%s is not on your contact list", acct)
	} else if err != nil {
		return nil, err
	}
	n.endWatching(id.Account, acct.String())
	return map[string]string{"removed": acct.String()}, nil
}
