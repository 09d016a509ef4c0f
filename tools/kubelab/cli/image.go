package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/spec/ociimage"
)

// newImageCommand is `kubelab image`: building kubelab's local test images
// as OCI archives (no registry, no daemon).
func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build local OCI image archives (test images, or an image from a static binary)",
	}
	cmd.AddCommand(newImageBuildCommand(), newImageBinaryCommand(), newImageCheckCommand())
	return cmd
}

func newImageBuildCommand() *cobra.Command {
	var out, workload, busybox string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the pause, workload, webserver and busybox test images into a directory",
		Long: `Build kubelab's test images as OCI image archives, deterministically:

  pause.tar     ` + ociimage.PauseImageName + `     /pause (the workload binary's pause mode)
  workload.tar  ` + ociimage.WorkloadImageName + `  /workload, default args "pause"
  webserver.tar ` + ociimage.WebserverImageName + ` the workload serving HTTP on port 80 (netexec)
  busybox.tar   ` + ociimage.BusyboxImageName + `   Debian's busybox-static with applet symlinks

The workload binary must be static: CGO_ENABLED=0 go build -o _out/bin/workload ./tools/workload
(make images does both). Import them with ` + "`kubelab runtime import`" + ` or ` + "`ctr images import`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(workload); err != nil {
				return fmt.Errorf("workload binary: %w (build it with `CGO_ENABLED=0 go build -o %s ./tools/workload`, or run `make images`)", err, workload)
			}
			built, err := ociimage.BuildTestImages(out, workload, busybox)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fprintf(tw, "ARCHIVE\tIMAGE\tID\tSIZE\n")
			for _, b := range built {
				printBuilt(tw, b.Path, b.Name, b.Image)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", filepath.Join("_out", "images"), "directory to write the archives to")
	cmd.Flags().StringVar(&workload, "workload", filepath.Join("_out", "bin", "workload"), "the static workload binary (tools/workload)")
	cmd.Flags().StringVar(&busybox, "busybox", ociimage.DefaultBusybox, "the static busybox binary (Debian's busybox-static)")
	return cmd
}

func newImageBinaryCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "binary NAME STATIC-BINARY [-- DEFAULT-ARGS...]",
		Short: "Build a one-layer image holding a static binary as its entrypoint",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := ociimage.BinaryImage(args[0], args[1], args[2:]...)
			if err != nil {
				return err
			}
			img, err := ociimage.Build(s)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Base(args[1]) + ".tar"
			}
			if err := img.WriteArchiveFile(out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			printBuilt(tw, out, args[0], img)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "archive to write (default: BINARY's base name + .tar)")
	return cmd
}

func newImageCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check ARCHIVE...",
		Short: "Read OCI image archives strictly and list their images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, p := range args {
				a, err := ociimage.ReadArchive(p)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				for _, d := range a.Index.Manifests {
					fprintf(tw, "%s\t%s\t%s\n", p, d.Annotations["org.opencontainers.image.ref.name"], a.Manifests[d.Digest].Config.Digest)
				}
			}
			return tw.Flush()
		},
	}
}

func printBuilt(w io.Writer, path, name string, img *ociimage.Image) {
	size := int64(0)
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	fprintf(w, "%s\t%s\t%s\t%d\n", path, name, img.ID(), size)
}
