package aliyun

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Metadata reads the instance metadata server (plain text answers).
type Metadata struct {
	BaseURL    string // e.g. http://100.100.100.200
	HTTPClient *http.Client
}

// Get fetches /latest/meta-data/<path>.
func (m *Metadata) Get(ctx context.Context, path string) (string, error) {
	hc := m.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	base := strings.TrimSuffix(m.BaseURL, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/latest/meta-data/"+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("metadata %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metadata %s: HTTP %d", path, resp.StatusCode)
	}
	return string(b), nil
}
