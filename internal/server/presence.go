package server

// endWatching ends presence between two accounts once one removed the
// other: they are no longer mutual contacts, so neither may watch the
// other any more, from this moment.
func (n *Node) endWatching(owner, contact string) {
	n.mu.Lock()
	p := n.pres
	n.mu.Unlock()
	if p != nil {
		p.EndWatching(owner, contact)
	}
}
