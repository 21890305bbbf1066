package dist_test

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestInitContainerInstallsCNI runs each manifest's init container on a stand-in for weft's image, its volume
// mounts mapped to temporary directories as the kubelet would bind them: the host's CNI bin dir gets the flannel
// plugin and its conf dir gets the ConfigMap's cni-conf.json as 10-flannel.conflist, upstream's name, which
// replaces an upstream install in place.
func TestInitContainerInstallsCNI(t *testing.T) {
	img := imageRoot(t)
	for _, name := range kubeManifests(t) {
		t.Run(name, func(t *testing.T) {
			m := loadManifest(t, name)
			ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
			cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
			host := t.TempDir()
			runInitContainer(t, ds, cm, ds.Spec.Template.Spec.InitContainers[0], img, host)
			plugin := filepath.Join(host, "opt/cni/bin/flannel")
			if st, err := os.Stat(plugin); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("host /opt/cni/bin/flannel not installed as an executable: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(host, "etc/cni/net.d/10-flannel.conflist"))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(cm.Data["cni-conf.json"])) {
				t.Errorf("installed conflist differs from cni-conf.json:\n%s", got)
			}
		})
	}
}
