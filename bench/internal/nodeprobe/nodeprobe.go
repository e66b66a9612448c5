// Package nodeprobe holds what the benchmark programs share to drive a
// running phonexd from outside: a JSON call to its API and a reading of its
// resident memory.
package nodeprobe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// PostJSON posts req as JSON to url and decodes a 200 answer into resp;
// any other status is an error carrying the start of the body.
func PostJSON(hc *http.Client, url string, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	res, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("%s: %s %s", url, res.Status, msg)
	}
	return json.NewDecoder(res.Body).Decode(resp)
}

// RSS is the resident set size of process pid in bytes (Linux /proc).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
