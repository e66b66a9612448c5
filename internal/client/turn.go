package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phonex/phonex/internal/api"
)

// ErrNoRelay: the home cluster runs no STUN/TURN relay and names none.
var ErrNoRelay = errors.New("the cluster offers no STUN/TURN relay")

// RelayCredentials are short-lived credentials for the cluster's STUN/TURN
// relays, valid on every URI until Expires.
type RelayCredentials struct {
	URIs     []string      `json:"uris"` // turn:HOST:PORT?transport=udp|tcp, turns:HOST:PORT?transport=tcp
	STUN     []string      `json:"stun"` // stun:HOST:PORT
	Username string        `json:"username"`
	Password string        `json:"password"`
	TTL      time.Duration `json:"-"`
	Expires  time.Time     `json:"expires"`
}

// TURNCredentials asks the home cluster for relay credentials of this
// device's account.
func (p *Profile) TURNCredentials(ctx context.Context) (RelayCredentials, error) {
	var out api.TURNCredentials
	if err := p.c.call(ctx, "GET", api.PathTURN, nil, &out); err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeRelayUnavailable {
			return RelayCredentials{}, fmt.Errorf("%w: %s", ErrNoRelay, ae.Message)
		}
		return RelayCredentials{}, fmt.Errorf("relay credentials: %w", err)
	}
	if out.Username == "" || out.Password == "" || len(out.URIs)+len(out.STUN) == 0 {
		return RelayCredentials{}, errors.New("relay credentials: the cluster's answer lacks a username, password or URI")
	}
	return RelayCredentials{URIs: out.URIs, STUN: out.STUN, Username: out.Username, Password: out.Password,
		TTL: time.Duration(out.TTL) * time.Second, Expires: out.Expires}, nil
}
