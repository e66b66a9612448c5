package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/phonex/phonex/internal/bus"
)

// ClusterConfig joins a node to the other nodes of its cluster
// (docs/cluster.md). Without a bus the node runs alone.
type ClusterConfig struct {
	Bus    string // NATS URLs (nats://host:port, comma-separated); empty: alone
	NodeID string // this node's id on the bus; empty: generated at each start
}

func (c ClusterConfig) validate() error {
	if c.Bus != "" {
		for u := range strings.SplitSeq(c.Bus, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (pu.Scheme != "nats" && pu.Scheme != "tls") || pu.Host == "" {
				return fmt.Errorf("bus %q: want nats://host:port (several separated by commas)", u)
			}
		}
	}
	if c.NodeID != "" {
		if err := bus.CheckNodeID(c.NodeID); err != nil {
			return fmt.Errorf("node_id: %w", err)
		}
	}
	return nil
}

func (c ClusterConfig) encode(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# Cluster: the NATS server(s) that carry routing between nodes sharing one\n# store (nats://host:port, comma-separated; empty: this node runs alone), and\n# this node's id on the bus (empty: generated at each start).\n")
	fmt.Fprintf(b, "bus = %s\nnode_id = %s\n", c.Bus, c.NodeID)
}

func (c *ClusterConfig) parse(k, v string) bool {
	switch k {
	case "bus":
		c.Bus = v
	case "node_id":
		c.NodeID = v
	default:
		return false
	}
	return true
}

// nodeID is the configured id, or the host name with a random suffix:
// a restarted node is a new node to the others.
func (c ClusterConfig) nodeID() string {
	if c.NodeID != "" {
		return c.NodeID
	}
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	b := make([]byte, 4)
	rand.Read(b)
	if host == "" {
		host = "node"
	}
	return host + "-" + hex.EncodeToString(b)
}
