package cli

import (
	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/deploy"
)

type undeployOptions struct {
	kube         *kubeFlags
	deleteData   bool
	deleteCopies bool
	dryRun       string
}

func newUndeployCommand(streams IOStreams) *cobra.Command {
	o := &undeployOptions{kube: newKubeFlags()}
	cmd := &cobra.Command{
		Use:   "undeploy",
		Short: "Remove what registry-kit deploy applied, keeping the images unless --delete-data",
		Long: `Remove from the namespace every object that registry-kit deploy applied (found by its server-side apply field
manager "registry-kit"); objects created by hand or by other tools stay. The PersistentVolumeClaim holding the
images, and with it the namespace, are kept unless --delete-data. The namespace itself is deleted only when deploy
created it (annotation registry-kit.dev/created-by=registry-kit) and no claim is left in it: a namespace that
existed before deploy is never deleted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dryRun, err := deploy.ParseDryRun(o.dryRun)
			if err != nil {
				return err
			}
			clients, err := deployClients(o.kube)
			if err != nil {
				return err
			}
			_, err = deploy.Undeploy(cmd.Context(), clients, deploy.UndeployOptions{
				Namespace: deployNamespace(o.kube), DeleteData: o.deleteData, DeleteCopies: o.deleteCopies, DryRun: dryRun,
				Progress: streams.Out,
			})
			return err
		},
	}
	o.kube.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.deleteData, "delete-data", false, "also delete the image volume claim (all pushed images) and the namespace, if deploy created it")
	cmd.Flags().BoolVar(&o.deleteCopies, "delete-copies", false, "also delete the pull secret copies the pull-secret controller made in every namespace (and the ServiceAccount references it added)")
	cmd.Flags().StringVar(&o.dryRun, "dry-run", "none", "none, client or server: show what would be deleted")
	return cmd
}
