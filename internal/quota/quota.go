// Package quota evaluates VPC route-table usage against the route-entry quota for `weft quota`: per table the
// custom entries used, this cluster's, other weft clusters' and foreign ones (counted by routetable.Count, the
// rule the ali-vpc leader's metrics use too), the quota and where that figure came from (the Quota Center, else
// the configured fallback), what is left (the node headroom, one entry per node), and a verdict against warning
// and critical thresholds. It links no cloud SDK: the cloud is behind the small API and QuotaReader interfaces.
package quota

import (
	"context"
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/weftnet/weft/cloud/routetable"
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

// SourceAPI is the quota source when the Quota Center answered.
const SourceAPI = "quotas API"

// Table is one table's usage.
type Table struct {
	ID    string `json:"routeTableId"`
	Used  int    `json:"used"`
	Quota int    `json:"quota"`
	// QuotaSource is where Quota came from: SourceAPI, or the fallback's name (Options.QuotaFrom) when the
	// Quota Center refused or failed; QuotaSourceError then says why.
	QuotaSource      string  `json:"quotaSource"`
	QuotaSourceError string  `json:"quotaSourceError,omitempty"`
	Free             int     `json:"free"`
	Owned            int     `json:"weftOwned"`         // this cluster's entries
	OtherWeft        int     `json:"otherWeftClusters"` // other weft clusters' entries
	Foreign          int     `json:"foreign"`
	Percent          float64 `json:"usedPercent"`
	Headroom         int     `json:"nodeHeadroom"`
	Level            Level   `json:"level"`
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
	// Quotas reads the route-entry quota from the cloud; nil, or when it refuses or fails, Quota is used.
	Quotas    QuotaReader
	Quota     int    // quota per table when the cloud does not tell (DefaultQuota)
	QuotaFrom string // the name of that fallback in the report ("--quota")
	// Owner is this cluster's owner tag, routetable.OwnerTag(clusterID); empty: every weft entry is counted as
	// another cluster's.
	Owner string
	// Warning and Critical are percent thresholds, 0 < Warning < Critical <= 100; both zero: 80 and 95.
	Warning, Critical float64
}

// API is what the evaluation reads (*aliyun.Client implements it).
type API interface {
	RouteTables(ctx context.Context, vpcID string) ([]routetable.Table, error)
	RouteEntries(ctx context.Context, tableID string) ([]routetable.Entry, error)
}

// QuotaReader reads the route-entry quota the cloud holds for the region's tables (*aliyun.Client implements
// it with the Quota Center).
type QuotaReader interface {
	RouteEntryQuota(ctx context.Context) (int, error)
}

// Evaluate reads the given tables (every table of the VPC when none) and grades them.
func Evaluate(ctx context.Context, api API, vpc string, tables []string, o Options) (Report, error) {
	if o.Quota <= 0 {
		o.Quota = DefaultQuota
	}
	if o.QuotaFrom == "" {
		o.QuotaFrom = "--quota"
	}
	if o.Warning == 0 && o.Critical == 0 {
		o.Warning, o.Critical = DefaultWarning, DefaultCritical
	}
	if err := CheckThresholds(o.Warning, o.Critical); err != nil {
		return Report{}, err
	}
	if len(tables) == 0 {
		if vpc == "" {
			return Report{}, fmt.Errorf("give --vpc-id or at least one --route-table")
		}
		ts, err := api.RouteTables(ctx, vpc)
		if err != nil {
			return Report{}, err
		}
		// A VPC always has its system route table: none means the VPC is not there (or not in this region).
		if len(ts) == 0 {
			return Report{}, fmt.Errorf("--vpc-id %s: no route tables found; is the VPC in this region (--region)?", vpc)
		}
		for _, t := range ts {
			tables = append(tables, t.ID)
		}
	}
	quota, source, sourceErr := o.Quota, o.QuotaFrom, ""
	if o.Quotas != nil {
		// One read: the Quota Center's figure is per region, the same for every table.
		if q, err := o.Quotas.RouteEntryQuota(ctx); err == nil {
			quota, source = q, SourceAPI
		} else {
			sourceErr = err.Error()
		}
	}
	r := Report{Warning: o.Warning, Critical: o.Critical}
	for _, id := range tables {
		es, err := api.RouteEntries(ctx, id)
		if err != nil {
			return Report{}, err
		}
		u := routetable.Count(es, o.Owner)
		t := Table{ID: id, Quota: quota, QuotaSource: source, QuotaSourceError: sourceErr, Used: u.Custom, Owned: u.Own,
			OtherWeft: u.OtherWeft, Foreign: u.Foreign}
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

// Default thresholds, percent used.
const (
	DefaultWarning  = 80
	DefaultCritical = 95
)

// CheckThresholds accepts 0 < warning < critical <= 100, both finite, naming the flag that is wrong.
func CheckThresholds(warning, critical float64) error {
	for _, t := range []struct {
		flag string
		v    float64
	}{{"--warning", warning}, {"--critical", critical}} {
		if math.IsNaN(t.v) || t.v <= 0 || t.v > 100 {
			return fmt.Errorf("%s %v: expected a percentage above 0 and at most 100", t.flag, t.v)
		}
	}
	if warning >= critical {
		return fmt.Errorf("--warning %v: expected below --critical %v", warning, critical)
	}
	return nil
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE TABLE\tUSED\tQUOTA\tFREE\tUSED%\tTHIS CLUSTER\tOTHER WEFT\tFOREIGN\tNODE HEADROOM\tLEVEL")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%s\n", t.ID, t.Used, t.Quota, t.Free, t.Percent, t.Owned, t.OtherWeft,
			t.Foreign, t.Headroom, t.Level)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Tables {
		why := ""
		if t.QuotaSourceError != "" {
			why = "; the quotas API did not answer: " + t.QuotaSourceError
		}
		if _, err := fmt.Fprintf(w, "%s: quota %d (source: %s%s)\n", t.ID, t.Quota, t.QuotaSource, why); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "overall: %s (warning at %.0f%%, critical at %.0f%%)\n", r.Level, r.Warning, r.Critical)
	return err
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
