package pidf

import (
	"testing"
	"time"
)

// benchDoc is an account with two online devices, as a NOTIFY carries it.
var benchDoc = Document{Entity: "pres:alice@example.org", Tuples: []Tuple{
	{Device: "laptop", State: Away, Note: "lunch", Since: since, Caps: []string{"3.1.4", "3.1.3", "3.1.2.1", "3.1.2"},
		CertHash: "0123456789abcdef", CertNotBefore: since.Add(-time.Hour)},
	{Device: "phone", State: Online, Since: since, Caps: []string{"3.1.4", "3.1.3"}, CertHash: "fedcba9876543210", CertNotBefore: since},
}}

// BenchmarkMarshal: one document per change of an account, shared by all
// its watchers.
func BenchmarkMarshal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchDoc.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse: one per NOTIFY at a watching device, one per PUBLISH at
// the node.
func BenchmarkParse(b *testing.B) {
	doc, err := benchDoc.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}
