package server

import (
	"bytes"
	"fmt"
	"net"
)

// DefaultMetricsAddr is the metrics listener's default: loopback, so that
// only the machine's own Prometheus (or a proxy in front of it) scrapes.
const DefaultMetricsAddr = "127.0.0.1:9464"

func (c Config) encodeOps(b *bytes.Buffer) {
	fmt.Fprintf(b, "# Prometheus metrics (/metrics) and health checks for a load balancer (/healthz:\n# the process is alive; /readyz: the store, and the bus when set, answer), over\n# plain HTTP. Keep it on loopback or a monitoring network; off: no listener.\nmetrics_addr = %s\n\n", c.MetricsAddr)
}

func (c Config) validateOps() error {
	if c.MetricsAddr == "" || c.MetricsAddr == "off" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		return fmt.Errorf("metrics_addr %q: %w (or off)", c.MetricsAddr, err)
	}
	return nil
}
