package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

func postJSON(hc *http.Client, url string, req, resp any) error {
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
