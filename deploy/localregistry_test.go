package deploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestLocalRegistryHostingConfigMap(t *testing.T) {
	cm, err := LocalRegistryHostingConfigMap(&Result{Namespace: "docker-registry", Service: "registry", PushAddress: "127.0.0.1:30500", PullPrefix: "localhost:29500"})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Namespace != "kube-public" || cm.Name != "local-registry-hosting" || cm.Labels[LabelRegistryNamespace] != "docker-registry" {
		t.Errorf("metadata %+v", cm.ObjectMeta)
	}
	var got map[string]string
	if err := yaml.Unmarshal([]byte(cm.Data["localRegistryHosting.v1"]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"host": "127.0.0.1:30500", "hostFromContainerRuntime": "localhost:29500",
		"hostFromClusterNetwork": "registry.docker-registry.svc:5000", "help": localRegistryHelp}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
