package dist_test

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestInitContainerInstallsCNI runs each manifest's init container on a stand-in for weft's image, its volume
// mounts mapped to temporary directories as the kubelet would bind them: the host's CNI bin dir gets the backend's
// plugin (flannel, or weft-eni) and its conf dir gets the ConfigMap's cni-conf.json under the backend's name
// (10-flannel.conflist, upstream's, which replaces an upstream install in place; or 10-weft-eni.conflist).
func TestInitContainerInstallsCNI(t *testing.T) {
	img := imageRoot(t)
	for _, name := range kubeManifests(t) {
		t.Run(name, func(t *testing.T) {
			m := loadManifest(t, name)
			ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
			cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
			spec := backends[name]
			host := t.TempDir()
			runInitContainer(t, ds, cm, ds.Spec.Template.Spec.InitContainers[0], img, host)
			plugin := filepath.Join(host, "opt/cni/bin", spec.plugin)
			if st, err := os.Stat(plugin); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("host /opt/cni/bin/%s not installed as an executable: %v", spec.plugin, err)
			}
			if ents, _ := os.ReadDir(filepath.Join(host, "opt/cni/bin")); len(ents) != 1 {
				t.Errorf("host /opt/cni/bin holds %d files, want only %s", len(ents), spec.plugin)
			}
			got, err := os.ReadFile(filepath.Join(host, "etc/cni/net.d", spec.conflist))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(cm.Data["cni-conf.json"])) {
				t.Errorf("installed conflist differs from cni-conf.json:\n%s", got)
			}
		})
	}
}
