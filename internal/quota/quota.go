// Package quota evaluates VPC route-table usage against the route-entry quota for `weft quota` and the ali-vpc
// backend's metrics: per table the custom entries used, weft's own and foreign ones, the quota and what is left
// (the node headroom, one entry per node), and a verdict against warning and critical thresholds.
package quota

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/weftnet/weft/cloud/aliyun"
)

// DefaultQuota is the service's default custom entries per route table (raisable to 1000).
const DefaultQuota = 200

// Level is a verdict; its value is the CLI's exit code.
type Level int

const (
	OK       Level = 0
	Warning  Level = 1
	Critical Level = 2
)

func (l Level) String() string {
	return [...]string{"ok", "warning", "critical"}[l]
}

// MarshalText makes JSON show the name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Table is one table's usage.
type Table struct {
	ID       string  `json:"routeTableId"`
	Used     int     `json:"used"`
	Quota    int     `json:"quota"`
	Free     int     `json:"free"`
	Owned    int     `json:"weftOwned"`
	Foreign  int     `json:"foreign"`
	Percent  float64 `json:"usedPercent"`
	Headroom int     `json:"nodeHeadroom"`
	Level    Level   `json:"level"`
}

// Report is the whole answer.
type Report struct {
	Tables   []Table `json:"tables"`
	Warning  float64 `json:"warningPercent"`
	Critical float64 `json:"criticalPercent"`
	Level    Level   `json:"level"`
}

// Options for Evaluate.
type Options struct {
	Quota             int     // quota per table when the API does not tell (DefaultQuota)
	Owner             string  // Description prefix of weft's entries ("weft:")
	Warning, Critical float64 // percent thresholds (80, 95)
}

// API is what the evaluation reads.
type API interface {
	RouteTables(ctx context.Context, vpcID string) ([]aliyun.RouteTable, error)
	RouteEntries(ctx context.Context, tableID string) ([]aliyun.RouteEntry, error)
}

// Evaluate reads the given tables (every table of the VPC when none) and grades them.
func Evaluate(ctx context.Context, api API, vpc string, tables []string, o Options) (Report, error) {
	if o.Quota <= 0 {
		o.Quota = DefaultQuota
	}
	if o.Owner == "" {
		o.Owner = "weft:"
	}
	if o.Warning <= 0 {
		o.Warning = 80
	}
	if o.Critical <= 0 {
		o.Critical = 95
	}
	if o.Warning > o.Critical {
		return Report{}, fmt.Errorf("--warning %.0f%% is above --critical %.0f%%", o.Warning, o.Critical)
	}
	if len(tables) == 0 {
		if vpc == "" {
			return Report{}, fmt.Errorf("give --vpc-id or at least one --route-table")
		}
		ts, err := api.RouteTables(ctx, vpc)
		if err != nil {
			return Report{}, err
		}
		for _, t := range ts {
			tables = append(tables, t.ID)
		}
	}
	r := Report{Warning: o.Warning, Critical: o.Critical}
	for _, id := range tables {
		es, err := api.RouteEntries(ctx, id)
		if err != nil {
			return Report{}, err
		}
		t := Table{ID: id, Quota: o.Quota}
		for _, e := range es {
			if e.Type != "Custom" {
				continue
			}
			t.Used++
			if strings.HasPrefix(e.Description, o.Owner) {
				t.Owned++
			} else {
				t.Foreign++
			}
		}
		t.Free = max(t.Quota-t.Used, 0)
		t.Headroom = t.Free
		t.Percent = 100 * float64(t.Used) / float64(t.Quota)
		switch {
		case t.Percent >= o.Critical:
			t.Level = Critical
		case t.Percent >= o.Warning:
			t.Level = Warning
		}
		r.Level = max(r.Level, t.Level)
		r.Tables = append(r.Tables, t)
	}
	return r, nil
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE TABLE\tUSED\tQUOTA\tFREE\tUSED%\tWEFT\tFOREIGN\tNODE HEADROOM\tLEVEL")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%s\n", t.ID, t.Used, t.Quota, t.Free, t.Percent, t.Owned, t.Foreign, t.Headroom, t.Level)
	}
	fmt.Fprintf(tw, "overall: %s (warning at %.0f%%, critical at %.0f%%)\n", r.Level, r.Warning, r.Critical)
	return tw.Flush()
}

// UnmarshalText reads a level name.
func (l *Level) UnmarshalText(b []byte) error {
	for _, c := range []Level{OK, Warning, Critical} {
		if c.String() == string(b) {
			*l = c
			return nil
		}
	}
	return fmt.Errorf("level %q: expected ok, warning or critical", b)
}
