package sqlite

import (
	"fmt"
	"sort"
	"testing"

	"github.com/phonex/phonex/internal/store"
)

// Every table and column of the schema is copied or derived: a migration
// that adds state must add it to store.CopyTables too.
func TestCopyTablesCoverSchema(t *testing.T) {
	db := open(t)
	derived := map[string]bool{"stored_bytes": true, "routing_generation": true, "policy_generation": true, "schema_migrations": true, "sqlite_sequence": true}
	have := map[string][]string{}
	for _, tb := range tables(t, db.db) {
		if derived[tb] {
			continue
		}
		for _, c := range columns(t, db.db, tb) {
			have[tb] = append(have[tb], c.name)
		}
		sort.Strings(have[tb])
	}
	want := map[string][]string{}
	for _, tb := range store.CopyTables {
		for _, c := range tb.Columns {
			want[tb.Name] = append(want[tb.Name], c.Name)
		}
		sort.Strings(want[tb.Name])
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Fatalf("schema %v\ncopied %v", have, want)
	}
}
