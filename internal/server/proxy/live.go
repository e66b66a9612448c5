package proxy

import "time"

// Registrations is the number of devices with a live binding (the admin
// panel's live state, metrics).
func (p *Proxy) Registrations() int {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, b := range p.bindings {
		if b != nil && now.Before(b.expires) {
			n++
		}
	}
	return n
}
