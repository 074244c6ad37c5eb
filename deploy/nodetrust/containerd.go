package nodetrust

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ErrNoConfigPath is returned (wrapped) when containerd's configuration sets no registry config_path: containerd
// then ignores every certs.d directory.
var ErrNoConfigPath = errors.New("containerd's CRI registry config_path is not set")

// DefaultV3ConfigPath is containerd 2's config_path when a version 3 configuration leaves it unset.
const DefaultV3ConfigPath = "/etc/containerd/certs.d:/etc/docker/certs.d"

// ConfigPaths returns the directories containerd's CRI plugin reads hosts.toml files from, per its configuration
// file: plugins."io.containerd.grpc.v1.cri".registry.config_path (config version 2) or
// plugins."io.containerd.cri.v1.images".registry.config_path (version 3), a list separated by ':'.
func ConfigPaths(configTOML []byte) ([]string, error) {
	var cfg struct {
		Version int                       `toml:"version"`
		Imports []string                  `toml:"imports"`
		Plugins map[string]map[string]any `toml:"plugins"`
	}
	if err := toml.Unmarshal(configTOML, &cfg); err != nil {
		return nil, fmt.Errorf("parsing containerd's configuration: %w", err)
	}
	plugin := "io.containerd.grpc.v1.cri"
	if cfg.Version >= 3 {
		plugin = "io.containerd.cri.v1.images"
	}
	var value string
	if reg, ok := cfg.Plugins[plugin]["registry"].(map[string]any); ok {
		value, _ = reg["config_path"].(string)
	}
	if value == "" && cfg.Version >= 3 {
		value = DefaultV3ConfigPath
	}
	if value == "" {
		hint := ""
		if len(cfg.Imports) > 0 {
			hint = fmt.Sprintf(" (it imports %s, which this check does not read)", strings.Join(cfg.Imports, ", "))
		}
		return nil, fmt.Errorf("%w in [plugins.%q.registry]%s", ErrNoConfigPath, plugin, hint)
	}
	var out []string
	for _, p := range strings.Split(value, ":") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, filepath.Clean(p))
		}
	}
	return out, nil
}

// CheckConfigPath checks that containerd (configuration configTOML, read from configFile) reads hosts.toml files
// from certsDir, and says what to change when it does not.
func CheckConfigPath(configTOML []byte, configFile, certsDir string) error {
	paths, err := ConfigPaths(configTOML)
	if errors.Is(err, ErrNoConfigPath) {
		return fmt.Errorf("%s: %w: containerd ignores %s; add\n  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = %q\n"+
			"to it and restart containerd (or, for a version 3 configuration, the same under [plugins.\"io.containerd.cri.v1.images\".registry])",
			configFile, err, certsDir, certsDir)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", configFile, err)
	}
	if !slices.Contains(paths, filepath.Clean(certsDir)) {
		return fmt.Errorf("%s: containerd's registry config_path is %q, which does not include %s: redeploy with --containerd-certs-dir %s, or add %s to config_path and restart containerd",
			configFile, strings.Join(paths, ":"), certsDir, paths[0], certsDir)
	}
	return nil
}
