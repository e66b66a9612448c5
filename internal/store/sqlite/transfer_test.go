package sqlite

import (
	"fmt"
	"sort"
	"testing"

	"github.com/phonex/phonex/internal/store"
)

// Every table and column of the schema is copied or derived, and a column
// takes NULL in the copy exactly when it does in the schema: a migration
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
			// Primary keys are never NULL in what the store writes
			// (SQLite would let NULL into one not declared NOT NULL
			// and not INTEGER, a historical quirk).
			null := !c.notNull && c.pk == 0
			have[tb] = append(have[tb], fmt.Sprint(c.name, map[bool]string{true: "?"}[null]))
		}
		sort.Strings(have[tb])
	}
	want := map[string][]string{}
	for _, tb := range store.CopyTables {
		for _, c := range tb.Columns {
			want[tb.Name] = append(want[tb.Name], fmt.Sprint(c.Name, map[bool]string{true: "?"}[c.Nullable]))
		}
		sort.Strings(want[tb.Name])
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Fatalf("schema %v\ncopied %v", have, want)
	}
}
