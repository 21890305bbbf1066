package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/routetable"
	"github.com/weftnet/weft/internal/flagutil"
	"github.com/weftnet/weft/internal/quota"
)

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// quotaCmd: weft quota [--vpc-id V | --route-table T ...] [--cluster-id C] [--quota N] [--warning P] [--critical P]
// [-o json] [--timeout 30s]. The quota is the Quota Center's (vpc_quota_route_entrys_num); --quota only when that API refuses or
// fails, and the output says which. Exit 0 ok, 1 warning, 2 critical, 3 when the tables cannot be read.
func quotaCmd(ctx context.Context, args []string) error {
	// Exit codes 1 and 2 mean warning and critical, so a failure to answer exits 3.
	return failWith("quota", 3, quotaRun(ctx, args))
}

// failWith prints a command's error, unless it already is an exit code, and exits with code.
func failWith(name string, code int, err error) error {
	if _, ok := asExit(err); ok || err == nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "weft %s: %v\n", name, err)
	return exitError{code}
}

func quotaRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("quota", flag.ContinueOnError)
	region := fs.String("region", "", "region (default: $ALIBABA_CLOUD_REGION_ID, else the metadata region-id)")
	vpc := fs.String("vpc-id", "", "VPC whose route tables to read (default: metadata vpc-id, when no --route-table)")
	var tables []string
	fs.Var(flagutil.Repeated(&tables), "route-table", "route table id; repeatable (default: every table of the VPC)")
	q := fs.Int("quota", quota.DefaultQuota, "custom entries allowed per table when the Quota Center refuses or fails (the service default is 200, at most 1000)")
	warn := fs.Float64("warning", quota.DefaultWarning, "warning threshold, percent used (above 0, below --critical)")
	crit := fs.Float64("critical", quota.DefaultCritical, "critical threshold, percent used (at most 100)")
	cluster := fs.String("cluster-id", "", `this cluster's id: its entries carry the Description "weft:<id>" (ali-vpc's Backend.ClusterID, `+
		"else the net-conf Network); without it every weft entry is counted as another cluster's")
	out := fs.String("o", "text", "output: text or json")
	timeout := fs.Duration("timeout", defaultTimeout, "give up (exit 3) when the whole command has not finished within this time")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{3}
	}
	ctx, cancel, err := withTimeout(ctx, *timeout)
	if err != nil {
		return err
	}
	defer cancel()
	if *out != "text" && *out != "json" {
		return fmt.Errorf("-o %q: expected text or json", *out)
	}
	if *q < 1 || *q > 1000 {
		return fmt.Errorf("--quota %d: expected 1..1000", *q)
	}
	if err := quota.CheckThresholds(*warn, *crit); err != nil {
		return err
	}
	need := aliyun.Needs(0)
	if len(tables) == 0 {
		need |= aliyun.NeedVPC
	}
	api, id, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Region: *region, VPCID: *vpc, Need: need, Getenv: os.Getenv})
	if err != nil {
		return err
	}
	owner := ""
	if *cluster != "" {
		owner = routetable.OwnerTag(*cluster)
	}
	r, err := quota.Evaluate(ctx, api, id.VPCID, tables, quota.Options{Quotas: api, Quota: *q, QuotaFrom: "--quota", Owner: owner,
		Warning: *warn, Critical: *crit})
	if err != nil {
		return err
	}
	if *out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := r.WriteText(os.Stdout); err != nil {
		return err
	}
	if r.Level != quota.OK {
		return exitError{int(r.Level)}
	}
	return nil
}

// defaultTimeout bounds a CLI command that calls the cloud: long enough for the client's retries of a few slow
// answers, short enough for a script to notice an outage.
const defaultTimeout = 30 * time.Second

// withTimeout bounds the rest of a command; the cause names the flag, so an error says why waiting stopped.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc, error) {
	if d <= 0 {
		return nil, nil, fmt.Errorf("--timeout %s: expected a positive duration such as 30s", d)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("--timeout %s passed", d))
	return ctx, cancel, nil
}

func asExit(err error) (int, bool) {
	var e exitError
	if errors.As(err, &e) {
		return e.code, true
	}
	return 0, false
}
