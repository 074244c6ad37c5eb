package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/registry-kit/registry-kit/deploy"
	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

func TestPullSyncFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *deploy.PullSync
		wantErr string
	}{
		{name: "not asked for", args: nil, want: nil},
		{name: "every namespace", args: []string{"--sync-pull-secrets"},
			want: &deploy.PullSync{SourceName: "registry-kit-pull", Controller: syncer.ManifestOptions{ServiceAccounts: "default"}}},
		{name: "a selector and names", args: []string{"--sync-pull-secrets=team in (a,b)", "--pull-secret-source", "puller", "--pull-secret-name", "regcred", "--sync-service-accounts", "all"},
			want: &deploy.PullSync{SourceName: "puller", Controller: syncer.ManifestOptions{NamespaceSelector: "team in (a,b)", TargetName: "regcred", ServiceAccounts: "all"}}},
		{name: "bad selector", args: []string{"--sync-pull-secrets=a=(b"}, wantErr: `--sync-pull-secrets "a=(b"`},
		{name: "empty selector", args: []string{"--sync-pull-secrets="}, wantErr: "empty selector"},
		{name: "bad names", args: []string{"--sync-pull-secrets", "--pull-secret-name", "Reg_Cred"}, wantErr: `--pull-secret-name "Reg_Cred"`},
		{name: "a sync flag without --sync-pull-secrets", args: []string{"--pull-secret-source", "regcred"}, wantErr: "--pull-secret-source: needs --sync-pull-secrets"},
		{name: "--pull-secret-name alone (it also names --pull-secret-namespaces' Secrets)", args: []string{"--pull-secret-name", "regcred"}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p pullSyncFlags
			fs := pflag.NewFlagSet("deploy", pflag.ContinueOnError)
			p.addFlags(fs)
			target := fs.String("pull-secret-name", "", "deploy's flag, shared with --pull-secret-namespaces")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := p.toPullSync(fs.Changed, *target)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
