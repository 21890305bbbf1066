package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/quota"
)

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// quotaCmd: weft quota [--vpc-id V | --route-table T ...] [--quota N] [--warning P] [--critical P] [-o json].
// Exit 0 ok, 1 warning, 2 critical, 3 when the tables cannot be read.
func quotaCmd(ctx context.Context, args []string) error {
	err := quotaRun(ctx, args)
	if _, ok := asExit(err); ok || err == nil {
		return err
	}
	// Exit codes 1 and 2 mean warning and critical, so a failure to answer exits 3.
	fmt.Fprintln(os.Stderr, "weft quota:", err)
	return exitError{3}
}

func quotaRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("quota", flag.ContinueOnError)
	region := fs.String("region", os.Getenv("ALIBABA_CLOUD_REGION_ID"), "region (default: metadata region-id)")
	vpc := fs.String("vpc-id", "", "VPC whose route tables to read (default: metadata vpc-id, when no --route-table)")
	var tables listFlag
	fs.Var(&tables, "route-table", "route table id; repeatable (default: every table of the VPC)")
	q := fs.Int("quota", quota.DefaultQuota, "custom entries allowed per table when the API does not tell (the service default is 200, at most 1000)")
	warn := fs.Float64("warning", 80, "warning threshold, percent used")
	crit := fs.Float64("critical", 95, "critical threshold, percent used")
	owner := fs.String("owner", "weft:", "Description prefix of weft's entries")
	out := fs.String("o", "text", "output: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{3}
	}
	if *out != "text" && *out != "json" {
		return fmt.Errorf("-o %q: expected text or json", *out)
	}
	if *q < 1 || *q > 1000 {
		return fmt.Errorf("--quota %d: expected 1..1000", *q)
	}
	md := &aliyun.Metadata{BaseURL: aliyun.MetadataURL(os.Getenv)}
	if *region == "" {
		v, err := md.Get(ctx, "region-id")
		if err != nil {
			return fmt.Errorf("--region not given and the metadata server did not answer: %w", err)
		}
		*region = strings.TrimSpace(v)
	}
	if *vpc == "" && len(tables) == 0 {
		v, err := md.Get(ctx, "vpc-id")
		if err != nil {
			return fmt.Errorf("--vpc-id not given and the metadata server did not answer: %w", err)
		}
		*vpc = strings.TrimSpace(v)
	}
	api, err := aliyun.NewClient(aliyun.Config{Region: *region, Credentials: aliyun.DefaultChain(aliyun.ChainOptions{MetadataURL: md.BaseURL})})
	if err != nil {
		return err
	}
	r, err := quota.Evaluate(ctx, api, *vpc, tables, quota.Options{Quota: *q, Owner: *owner, Warning: *warn, Critical: *crit})
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

func asExit(err error) (int, bool) {
	var e exitError
	if errors.As(err, &e) {
		return e.code, true
	}
	return 0, false
}
