package deploy

import _ "embed"

// RBAC is a ClusterRole (YAML) granting exactly what Deploy and Undeploy need.
//
//go:embed rbac.yaml
var RBAC []byte
