package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBuiltOnSDK keeps the command honest about being built on the public
// SDK: of this module it may import sdk and internal/cli (flags and output)
// only.
func TestBuiltOnSDK(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"github.com/phonex/phonex/sdk": true, "github.com/phonex/phonex/internal/cli": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/phonex/phonex/") && !allowed[p] {
				t.Errorf("%s imports %s: the command must use package sdk", f, p)
			}
		}
	}
}
