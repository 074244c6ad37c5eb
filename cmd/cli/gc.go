package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/registry-kit/registry-kit/registry"
	"github.com/registry-kit/registry-kit/registry/gc"
)

// storageKeys are the serve flags that say where the store is; gc and fsck take them with serve's meaning,
// environment variables and config file.
var storageKeys = []string{"config", "data-dir", "storage", "s3-endpoint", "s3-region", "s3-bucket", "s3-root-directory",
	"s3-force-path-style", "s3-secure", "s3-skip-verify", "s3-access-key-file", "s3-secret-key-file", "redis-addr",
	"redis-db", "redis-password-file", "log-level", "log-format"}

// storageOptions reads serve's storage configuration for a command that opens the store itself.
func storageOptions(streams IOStreams, cmd *cobra.Command) *serveOptions {
	serve := newServeCommand(streams)
	o := &serveOptions{streams: streams, v: viper.New(), cmd: cmd}
	mine := map[string]bool{}
	for _, k := range storageKeys {
		cmd.Flags().AddFlag(copyFlag(serve.Flags().Lookup(k)))
		mine[k] = true
	}
	// serve's other settings keep their defaults (a config file or the environment may still set them).
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if !mine[f.Name] {
			o.v.SetDefault(f.Name, f.DefValue)
		}
	})
	return o
}

func copyFlag(f *pflag.Flag) *pflag.Flag { c := *f; return &c }

// storeConfig is the configuration of the store, checked for what opening it needs.
func (o *serveOptions) storeConfig() (registry.Config, error) {
	cfg, _, err := o.config()
	if err != nil {
		return cfg, err
	}
	if cfg.Storage != registry.StorageS3 {
		if fi, err := os.Stat(cfg.DataDir); err != nil || !fi.IsDir() {
			return cfg, fmt.Errorf("data-dir %s: no registry storage there (give --data-dir or --storage s3)", cfg.DataDir)
		}
	}
	return cfg, nil
}

type gcOptions struct {
	store *serveOptions
	o     gc.Options
	// retention from a file or from the keep flags
	policyFile, repositories, keepWithin, keepTags string
	keepLast                                       int
}

func newGCCommand(streams IOStreams) *cobra.Command {
	g := &gcOptions{}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete unreferenced blobs, untagged manifests, tags retention does not keep, abandoned uploads",
		Long: `Collect garbage in a registry-kit store (the data directory, or S3 with the same flags as serve).

Deletes blobs no manifest references, and with --delete-untagged manifests no tag reaches (never a child of a kept
index, the subject of a kept referrer, or a referrer of a kept manifest). Blob data and manifests newer than --window
are never candidates. --dry-run lists what would go and the bytes it would free, and changes nothing.

While serve runs, collect with serve --gc-interval, or give gc the --redis-addr the servers share: the servers then
journal their writes, are fenced for the sweep (503 with Retry-After) and forget deleted blobs, and only one
collection runs at a time. Without Redis nothing coordinates with a running serve: stop it first (a dry run is
always safe).

Retention: --keep-last, --keep-within and --keep-tags make one rule for --repositories; --retention-policy reads
rules from a YAML file:

  rules:
  - repositories: "team/*"   # * matches any characters, / included
    keepLast: 10             # the 10 most recently pushed tags
    keepWithin: 720h         # tags pushed in the last 30 days
    keepTags: "v[0-9].*|latest"

A tag stays when any rule matching its repository keeps it; repositories no rule matches keep every tag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.run(cmd, streams) },
	}
	f := cmd.Flags()
	f.BoolVar(&g.o.DryRun, "dry-run", false, "list what would be deleted and the bytes freed; delete nothing")
	f.DurationVar(&g.o.Window, "window", gc.DefaultWindow, "grace window: blob data and manifests newer than this are never deleted")
	f.BoolVar(&g.o.DeleteUntagged, "delete-untagged", false, "also delete manifests untagged for longer than --window")
	f.DurationVar(&g.o.UploadAge, "upload-age", registry.DefaultUploadPurgeAge, "delete unfinished uploads started longer ago than this (0 keeps them)")
	f.StringVar(&g.policyFile, "retention-policy", "", "retention policy file (YAML, see above)")
	f.StringVar(&g.repositories, "repositories", "*", "repositories the --keep-* rule applies to")
	f.IntVar(&g.keepLast, "keep-last", 0, "keep the N most recently pushed tags per repository")
	f.StringVar(&g.keepWithin, "keep-within", "", "keep tags pushed within this long (e.g. 720h)")
	f.StringVar(&g.keepTags, "keep-tags", "", "keep tags matching this regular expression")
	g.store = storageOptions(streams, cmd)
	return cmd
}

func (g *gcOptions) retention() (gc.Policy, error) {
	flagsSet := g.keepLast != 0 || g.keepWithin != "" || g.keepTags != ""
	switch {
	case g.policyFile != "" && flagsSet:
		return gc.Policy{}, errors.New("retention-policy and --keep-* flags: give one or the other")
	case g.policyFile != "":
		return gc.LoadPolicy(g.policyFile)
	case flagsSet:
		p := gc.Policy{Rules: []gc.Rule{{Name: "flags", Repositories: g.repositories, KeepLast: g.keepLast,
			KeepWithin: g.keepWithin, KeepTags: g.keepTags}}}
		if err := p.Validate(); err != nil {
			return gc.Policy{}, fmt.Errorf("retention flags: %w", err)
		}
		return p, nil
	}
	return gc.Policy{}, nil
}

func (g *gcOptions) run(cmd *cobra.Command, streams IOStreams) error {
	cfg, err := g.store.storeConfig()
	if err != nil {
		return err
	}
	if g.o.Retention, err = g.retention(); err != nil {
		return err
	}
	logger, err := newLogger(streams.ErrOut, cfg)
	if err != nil {
		return err
	}
	g.o.Logger = logger
	if len(cfg.Redis.Addrs) == 0 && !g.o.DryRun {
		logger.Warn("no redis-addr: this collection does not coordinate with a running serve; stop serve first, or use serve --gc-interval")
	}
	rep, err := registry.CollectGarbage(cmd.Context(), cfg, g.o)
	printReport(streams.Out, rep)
	return err
}

func printReport(w io.Writer, rep gc.Report) {
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	for _, t := range rep.RemovedTags {
		fmt.Fprintf(w, "%s tag %s:%s (%s; not kept by %s)\n", verb, t.Repository, t.Tag, t.Digest, strings.Join(t.Rules, ", "))
	}
	for _, m := range rep.Untagged {
		fmt.Fprintf(w, "%s manifest %s@%s (untagged)\n", verb, m.Repository, m.Digest)
	}
	for _, b := range rep.Blobs {
		fmt.Fprintf(w, "%s blob %s (%s)\n", verb, b.Digest, humanBytes(b.Size))
	}
	for _, d := range rep.Damaged {
		fmt.Fprintf(w, "damaged: %s (run registry-kit fsck)\n", d)
	}
	fmt.Fprintf(w, "%s %d blobs (%s), %d untagged manifests, %d tags, %d uploads; %d repositories, %d manifests, %s left; "+
		"spared %d new and %d touched meanwhile; took %s\n", verb, len(rep.Blobs), humanBytes(rep.Bytes), len(rep.Untagged),
		len(rep.RemovedTags), rep.Uploads, rep.Repositories, rep.Manifests, humanBytes(rep.StorageBytes),
		rep.SparedByWindow, rep.SparedByJournal, rep.Took.Round(time.Millisecond))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func newFsckCommand(streams IOStreams) *cobra.Command {
	var o gc.FsckOptions
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check a registry store for damage, changing nothing",
		Long: `Check that every tag resolves to a manifest of its repository, and that every blob and child manifest a manifest
references is stored, linked in the repository, with the size its descriptor says and content matching its digest.
Reports damage and exits 1 when it finds any; it never changes the store. Storage flags as serve.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&o.SkipDigests, "skip-digests", false, "check existence and sizes only, without reading blobs")
	store := storageOptions(streams, cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := store.storeConfig()
		if err != nil {
			return err
		}
		rep, err := registry.Fsck(cmd.Context(), cfg, o)
		if err != nil {
			return err
		}
		for _, d := range rep.Damage {
			fmt.Fprintln(streams.Out, d)
		}
		fmt.Fprintf(streams.Out, "checked %d repositories, %d tags, %d manifests, %d blobs: %d problems\n",
			rep.Repositories, rep.Tags, rep.Manifests, rep.Blobs, len(rep.Damage))
		if len(rep.Damage) > 0 {
			return fmt.Errorf("fsck found %d problems", len(rep.Damage))
		}
		return nil
	}
	return cmd
}
