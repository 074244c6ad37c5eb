package dockerconfig_test

import (
	"fmt"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

func ExampleConfig_Match() {
	payload, _ := dockerconfig.Build(dockerconfig.Entry{Server: "127.0.0.1:5000", Username: "ci", Password: "example"})
	cfg, _ := dockerconfig.ParseSecretData(dockerconfig.SecretTypeDockerConfigJSON,
		map[string][]byte{dockerconfig.DockerConfigJSONKey: payload})
	for _, image := range []string{"127.0.0.1:5000/app:v1", "127.0.0.1/app:v1", "nginx"} {
		key, cred, ok := cfg.Match(image)
		fmt.Printf("%s: %v %q %q\n", image, ok, key, cred.Username)
	}
	// Output:
	// 127.0.0.1:5000/app:v1: true "127.0.0.1:5000" "ci"
	// 127.0.0.1/app:v1: false "" ""
	// nginx: false "" ""
}

func ExampleNormalizeServer() {
	key, notes, _ := dockerconfig.NormalizeServer("https://127.0.0.1:5000/v2/")
	fmt.Println(key)
	for _, n := range notes {
		fmt.Println("-", n)
	}
	key, _, _ = dockerconfig.NormalizeServer("docker.io")
	fmt.Println(key)
	// Output:
	// 127.0.0.1:5000
	// - dropped the scheme https:// (the kubelet matches host[:port] only)
	// - dropped the API path /v2 (the kubelet ignores /v1/ and /v2/)
	// - the kubelet uses this entry for images named 127.0.0.1:5000/...; the port must match exactly
	// https://index.docker.io/v1/
}
