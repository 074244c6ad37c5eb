// Package deps pins the modules the packages being written will import; it goes away once they do.
package deps

import (
	_ "github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
	_ "github.com/distribution/distribution/v3/registry/storage/cache/redis"
	_ "github.com/distribution/reference"
	_ "github.com/docker/docker-credential-helpers/client"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/viper"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/term"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/kubelet/config/v1"
	_ "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	_ "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	_ "sigs.k8s.io/kustomize/api/krusty"
	_ "sigs.k8s.io/yaml"
)
