package aliyun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Credentials are one access key, possibly temporary (STS).
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	Expiration      time.Time // zero for long-lived keys
	Source          string    // where they came from, for logs ("env ACCESS_KEY_ID", "ram role weft-node")
}

// String never shows the secret or the token.
func (c Credentials) String() string {
	return fmt.Sprintf("access key %s from %s", c.AccessKeyID, c.Source)
}

// CredentialProvider hands out current credentials.
type CredentialProvider interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// Static is a fixed key pair (net-conf AccessKeyID / AccessKeySecret).
type Static Credentials

func (s Static) Credentials(context.Context) (Credentials, error) { return Credentials(s), nil }

// ErrNoCredentials is returned when no link of the chain has credentials.
var ErrNoCredentials = errors.New("no Alibaba Cloud credentials: set AccessKeyID/AccessKeySecret, ACCESS_KEY_ID/ACCESS_KEY_SECRET, " +
	"ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, a credentials file, or give the instance a RAM role")

// ChainOptions configure DefaultChain.
type ChainOptions struct {
	Static      *Credentials        // from configuration; used when set
	Getenv      func(string) string // reads the environment through EnvConfig (nil: the process environment)
	File        string              // credentials file; default $ALIBABA_CLOUD_CREDENTIALS_FILE or ~/.alibabacloud/credentials
	MetadataURL string              // metadata base, e.g. http://100.100.100.200; default env METADATA_ENDPOINT
	HTTPClient  *http.Client
}

// DefaultChain tries, in order: static keys from configuration, ACCESS_KEY_ID / ACCESS_KEY_SECRET (upstream
// flannel's ali-vpc names), ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, the credentials file,
// and the instance's RAM role from the metadata server.
func DefaultChain(o ChainOptions) CredentialProvider {
	if o.MetadataURL == "" {
		o.MetadataURL = EnvConfig(o.Getenv).MetadataEndpoint
	}
	return &chain{o: o, role: &RAMRole{MetadataURL: o.MetadataURL, HTTPClient: o.HTTPClient}}
}

type chain struct {
	o    ChainOptions
	role *RAMRole
}

func (c *chain) Credentials(ctx context.Context) (Credentials, error) {
	if s := c.o.Static; s != nil && s.AccessKeyID != "" {
		cr := *s
		cr.Source = "configuration"
		return cr, nil
	}
	env := EnvConfig(c.o.Getenv) // read on every call: keys put into the environment later are taken
	if len(env.Keys) > 0 {
		k := env.Keys[0]
		return Credentials{AccessKeyID: k.ID, AccessKeySecret: k.Secret, SecurityToken: env.SecurityToken, Source: "env " + k.Var}, nil
	}
	file := c.o.File
	if file == "" {
		file = env.CredentialsFile
	}
	if file == "" {
		if home, err := os.UserHomeDir(); err == nil {
			file = filepath.Join(home, ".alibabacloud", "credentials")
		}
	}
	if cr, err := readCredentialsFile(file); err == nil {
		return cr, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Credentials{}, err
	}
	if c.o.MetadataURL != "" {
		return c.role.Credentials(ctx)
	}
	return Credentials{}, ErrNoCredentials
}

// readCredentialsFile reads the [default] profile of an INI credentials file (type access_key).
func readCredentialsFile(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, err
	}
	defer f.Close()
	section := ""
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if section != "default" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if kv["access_key_id"] == "" || kv["access_key_secret"] == "" {
		return Credentials{}, fmt.Errorf("credentials file %s: [default] needs access_key_id and access_key_secret", path)
	}
	return Credentials{AccessKeyID: kv["access_key_id"], AccessKeySecret: kv["access_key_secret"], Source: "file " + path}, nil
}

// RAMRole fetches the instance's RAM-role credentials from the metadata server and refreshes them a margin
// before they expire.
type RAMRole struct {
	MetadataURL string
	HTTPClient  *http.Client
	// Margin is how long before expiry credentials are refreshed (default 5 minutes).
	Margin time.Duration
	Now    func() time.Time

	mu  sync.Mutex
	cur Credentials
}

func (r *RAMRole) Credentials(ctx context.Context) (Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now, margin := time.Now, r.Margin
	if r.Now != nil {
		now = r.Now
	}
	if margin == 0 {
		margin = 5 * time.Minute
	}
	if r.cur.AccessKeyID != "" && now().Add(margin).Before(r.cur.Expiration) {
		return r.cur, nil
	}
	md := &Metadata{BaseURL: r.MetadataURL, HTTPClient: r.HTTPClient}
	role, err := md.Get(ctx, "ram/security-credentials/")
	if err != nil {
		return Credentials{}, fmt.Errorf("RAM role: %w", err)
	}
	role = strings.TrimSpace(strings.Split(role, "\n")[0])
	body, err := md.Get(ctx, "ram/security-credentials/"+role)
	if err != nil {
		return Credentials{}, fmt.Errorf("RAM role %s: %w", role, err)
	}
	var v struct{ AccessKeyId, AccessKeySecret, SecurityToken, Expiration, Code string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Code != "Success" {
		return Credentials{}, fmt.Errorf("RAM role %s: unexpected credentials answer (code %q)", role, v.Code)
	}
	exp, err := time.Parse("2006-01-02T15:04:05Z", v.Expiration)
	if err != nil {
		return Credentials{}, fmt.Errorf("RAM role %s: Expiration %q: %w", role, v.Expiration, err)
	}
	r.cur = Credentials{AccessKeyID: v.AccessKeyId, AccessKeySecret: v.AccessKeySecret, SecurityToken: v.SecurityToken,
		Expiration: exp, Source: "ram role " + role}
	return r.cur, nil
}
