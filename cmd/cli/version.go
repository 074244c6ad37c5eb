package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version and Commit are set at build time with -ldflags "-X github.com/registry-kit/registry-kit/cmd/cli.Version=...
// -X github.com/registry-kit/registry-kit/cmd/cli.Commit=...". Without them the module version and the VCS revision
// Go stamps into the binary are used.
var (
	Version = ""
	Commit  = ""
)

const distributionModule = "github.com/distribution/distribution/v3"

// versionInfo is what `registry-kit version -o json` prints.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	// Modified is true when the binary was built from a tree with uncommitted changes.
	Modified     bool   `json:"modified,omitempty"`
	GoVersion    string `json:"goVersion"`
	Platform     string `json:"platform"`
	Distribution string `json:"distributionVersion,omitempty"`
}

func buildVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionFrom(bi)
}

// versionFrom fills in what the ldflags did not set from the build information Go stamps into the binary (nil when
// there is none). Test binaries carry no dependency list, so their distribution version is empty.
func versionFrom(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: Version, Commit: Commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == distributionModule {
				v.Distribution = d.Version
				if d.Replace != nil {
					v.Distribution = d.Replace.Version
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

func version() string { return buildVersion().Version }

func newVersionCommand(streams IOStreams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the registry-kit version (-o json: with commit, Go and distribution versions)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			switch output {
			case "":
				_, err := fmt.Fprintln(streams.Out, "registry-kit", v.Version)
				return err
			case "json":
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return fmt.Errorf("encoding version: %w", err)
				}
				_, err = fmt.Fprintf(streams.Out, "%s\n", b)
				return err
			default:
				return fmt.Errorf("--output %q: must be json, or not given for one line", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: version, commit, Go version, platform and embedded distribution version")
	return cmd
}
