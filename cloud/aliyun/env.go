package aliyun

import (
	"fmt"
	"os"
	"strings"
)

// Env is everything of the process environment this package honours. EnvConfig is the only place that reads
// it, so what a client does can be traced to a Config, a ChainOptions or an Env.
type Env struct {
	Region           string   // ALIBABA_CLOUD_REGION_ID
	VPCEndpoint      string   // VPC_ENDPOINT, host[:port]
	ECSEndpoint      string   // ECS_ENDPOINT, host[:port]
	QuotasEndpoint   string   // QUOTAS_ENDPOINT, host[:port] of the Quota Center API
	Scheme           string   // ALICLOUD_CLIENT_SCHEME, HTTP or HTTPS
	MetadataEndpoint string   // METADATA_ENDPOINT as given (host[:port] or URL); see MetadataURL
	Keys             []EnvKey // the access key pairs set in full, in the chain's order
	SecurityToken    string   // ALIBABA_CLOUD_SECURITY_TOKEN, sent with an environment key pair
	CredentialsFile  string   // ALIBABA_CLOUD_CREDENTIALS_FILE
}

// EnvKey is one access key pair from the environment and the variable that named its id.
type EnvKey struct {
	Var        string // ACCESS_KEY_ID or ALIBABA_CLOUD_ACCESS_KEY_ID
	ID, Secret string
}

// envKeyVars are the key pairs the chain reads, upstream flannel's ali-vpc names first.
var envKeyVars = [][2]string{{"ACCESS_KEY_ID", "ACCESS_KEY_SECRET"}, {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"}}

// EnvConfig reads the environment through getenv (os.Getenv in production, a map in tests; nil means the
// process environment).
func EnvConfig(getenv func(string) string) Env {
	if getenv == nil {
		getenv = os.Getenv
	}
	e := Env{Region: getenv("ALIBABA_CLOUD_REGION_ID"), VPCEndpoint: getenv("VPC_ENDPOINT"), ECSEndpoint: getenv("ECS_ENDPOINT"),
		QuotasEndpoint: getenv("QUOTAS_ENDPOINT"), Scheme: getenv("ALICLOUD_CLIENT_SCHEME"), MetadataEndpoint: getenv("METADATA_ENDPOINT"),
		SecurityToken: getenv("ALIBABA_CLOUD_SECURITY_TOKEN"), CredentialsFile: getenv("ALIBABA_CLOUD_CREDENTIALS_FILE")}
	for _, v := range envKeyVars {
		if id, sec := getenv(v[0]), getenv(v[1]); id != "" && sec != "" {
			e.Keys = append(e.Keys, EnvKey{Var: v[0], ID: id, Secret: sec})
		}
	}
	return e
}

// DefaultMetadataURL is the metadata server of a real instance.
const DefaultMetadataURL = "http://100.100.100.200"

// MetadataURL is METADATA_ENDPOINT as a URL (host[:port] gets http://, as the cloud provider reads it), else
// the real address.
func (e Env) MetadataURL() string {
	v := e.MetadataEndpoint
	if v == "" {
		return DefaultMetadataURL
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	return v
}

// MetadataURL is EnvConfig(getenv).MetadataURL().
func MetadataURL(getenv func(string) string) string { return EnvConfig(getenv).MetadataURL() }

// String shows what was set, key ids but never secrets or tokens, for the start-up log.
func (e Env) String() string {
	var b strings.Builder
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	add("ALIBABA_CLOUD_REGION_ID", e.Region)
	add("VPC_ENDPOINT", e.VPCEndpoint)
	add("ECS_ENDPOINT", e.ECSEndpoint)
	add("QUOTAS_ENDPOINT", e.QuotasEndpoint)
	add("ALICLOUD_CLIENT_SCHEME", e.Scheme)
	add("METADATA_ENDPOINT", e.MetadataEndpoint)
	for _, k := range e.Keys {
		add(k.Var, k.ID)
	}
	if e.SecurityToken != "" {
		add("ALIBABA_CLOUD_SECURITY_TOKEN", "<set>")
	}
	add("ALIBABA_CLOUD_CREDENTIALS_FILE", e.CredentialsFile)
	return strings.TrimSpace(b.String())
}
