package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOpts is the one JSON form of every message: proto field names (the
// uWSGI stats names), zero values included so scripts see every field.
var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// writeJSON prints m as indented JSON. protojson deliberately varies its
// whitespace between builds; compacting and re-indenting makes the output
// byte-stable.
func writeJSON(w io.Writer, m proto.Message) error {
	return writeJSONIndent(w, m, "  ")
}

// writeJSONLine prints m as one line of JSON (for streams).
func writeJSONLine(w io.Writer, m proto.Message) error {
	return writeJSONIndent(w, m, "")
}

func writeJSONIndent(w io.Writer, m proto.Message, indent string) error {
	raw, err := jsonOpts.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return fmt.Errorf("compact JSON: %w", err)
	}
	if indent == "" {
		out = compact
	} else if err := json.Indent(&out, compact.Bytes(), "", indent); err != nil {
		return fmt.Errorf("indent JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// emit prints m as JSON under -o json, else calls human.
func (g *globals) emit(m proto.Message, human func(io.Writer) error) error {
	if g.output == "json" {
		return writeJSON(g.io.Out, m)
	}
	return human(g.io.Out)
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// bytesize renders a byte count the way uwsgitop does (K, M, G).
func bytesize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGT"[exp])
}

// micros renders a duration given in microseconds.
func micros(us uint64) string {
	return (time.Duration(us) * time.Microsecond).String()
}

func unixTime(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}

func timestamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func duration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return d.AsDuration().String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func unum(n uint64) string { return fmt.Sprintf("%d", n) }

func inum(n int64) string { return fmt.Sprintf("%d", n) }

// enumName renders an enum value without its type prefix, lowercased
// (RAFT_ROLE_LEADER -> leader).
func enumName(name, prefix string) string {
	s := strings.ToLower(strings.TrimPrefix(name, prefix))
	if s == "unspecified" {
		return "unknown"
	}
	return s
}

func percent(part, whole uint64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", 100*float64(part)/float64(whole))
}
