// Package aliyun is weft's Alibaba Cloud client, in weft's own terms (route tables, route entries, batches,
// quota, vSwitches, ENIs, metadata), built on github.com/aliyun/alibaba-cloud-sdk-go. It owns what the SDK leaves
// to its users: endpoints, scheme and the metadata address from configuration (the environment is read in one
// place, EnvConfig), a credential chain ending in the instance's RAM role (refreshed before expiry), retries with
// jittered backoff by error class that reuse ClientToken so a retried create never doubles (a caller may pass
// its own, persisted token: NewENI.ClientToken), client-side token buckets per action (Terway's per-minute
// budgets for the ENI actions, DefaultRateLimits; Config.RateLimits), error classes the ENI backend acts on
// (IsVSwitchExhausted, IsENILimit, IsThrottled), and Prometheus metrics per action and outcome (and of the calls
// the rate limit held back), registered once per registry however many
// clients are built. No secret ever reaches a log line or an error message.
//
// Files by concern: env.go (the environment), client.go (configuration and construction), sdk.go (SDK clients
// rebuilt when credentials rotate), call.go (retries), ratelimit.go, metrics.go, errors.go (service errors and
// redaction), metadata.go and frommetadata.go (the instance metadata server and the one constructor that starts
// from it), credentials.go (the credential chain), then one file per API area: routes.go, vswitches.go,
// quota.go (Quota Center), instancetypes.go and ecs.go.
package aliyun
