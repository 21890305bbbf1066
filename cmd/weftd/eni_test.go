package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Kubernetes mode with a malformed eni Backend: weftd exits 1 naming the key, before the API server is contacted
// (--kube-api-url points at nothing), and an access key secret in the net-conf or in ACCESS_KEY_SECRET never
// appears in what it prints, whatever is wrong around it.
func TestMalformedENIConfigExits1(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "weftd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const secret = "Hush5ecretValue9"
	const good = `"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-1"]},"security_group":"sg-1"`
	for _, c := range []struct{ name, backend, want string }{
		{"unknown key", good + `,"max_pool_szie":5`, "Backend.max_pool_szie: unknown key"},
		{"bad type", good + `,"min_pool_size":"2"`, "Backend.min_pool_size"},
		{"negative pool size", good + `,"max_pool_size":-1`, "Backend.max_pool_size"},
		{"bad duration", good + `,"cooldown":"soon"`, "Backend.cooldown"},
		{"secret beside an unknown key", good + `,"AccessKeyID":"LTAI1","AccessKeySecret":"` + secret + `","warm_pool":1`, "Backend.warm_pool: unknown key"},
		{"secret without its id", good + `,"AccessKeySecret":"` + secret + `"`, "Backend.AccessKeyID and Backend.AccessKeySecret"},
		{"secret of the wrong type", good + `,"AccessKeyID":"LTAI1","AccessKeySecret":["` + secret + `"]`, "Backend.AccessKeySecret: expected a string"},
		{"secret under a misspelt key", good + `,"AccessKeyID":"LTAI1","AccessKeySecert":"` + secret + `"`, "Backend.AccessKeySecert: unknown key"},
		{"secret under Terway's key", good + `,"access_secret":"` + secret + `"`, "Backend.access_secret"},
		{"secret, then broken JSON", good + `,"AccessKeyID":"LTAI1","AccessKeySecret":"` + secret + `",}`, "net-conf.json"},
		{"no vswitches", `"Type":"eni","security_group":"sg-1","AccessKeyID":"LTAI1","AccessKeySecret":"` + secret + `"`, "Backend.vswitches"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nc := filepath.Join(t.TempDir(), "net-conf.json")
			if err := os.WriteFile(nc, []byte(`{"Backend":{`+c.backend+`}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "--kube-subnet-mgr", "--net-config-path="+nc, "--kube-api-url=http://127.0.0.1:1", "-v=10")
			cmd.Env = append(os.Environ(), "NODE_NAME=n1", "ACCESS_KEY_ID=LTAIenv", "ACCESS_KEY_SECRET=Env"+secret)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
				t.Errorf("%v, want exit 1 naming %s\n%s", err, c.want, out)
			}
			if strings.Contains(string(out), secret) {
				t.Errorf("the secret is in the output:\n%s", out)
			}
			if strings.Contains(string(out), "127.0.0.1:1") && !strings.Contains(string(out), "--kube-api-url=http://127.0.0.1:1") {
				t.Errorf("the API server was contacted:\n%s", out)
			}
		})
	}
}
