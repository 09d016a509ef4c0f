package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/plugins/runtime/process/criserver"
	"github.com/kubelab/kubelab/spec"
)

// DefaultRuntimeRoot is where `kubelab runtime` keeps its state and images.
const DefaultRuntimeRoot = "/var/lib/kubelab/runtime"

// DefaultRuntimeEndpoint is the socket `kubelab runtime` serves CRI on.
const DefaultRuntimeEndpoint = "unix:///run/kubelab/runtime.sock"

// newRuntimeCommand is `kubelab runtime`: serve a registered runtime plugin
// (kubelab's process runtime by default) over CRI gRPC on a unix socket.
func newRuntimeCommand(reg *spec.Registry) *cobra.Command {
	var (
		listen, root, name string
		options            []string
	)
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Serve a container runtime plugin over CRI gRPC (crictl, the kubelet and critest can use it)",
		Long: `runtime starts a registered runtime plugin — kubelab's process runtime by
default — and serves it over CRI gRPC on a unix socket until interrupted:

  kubelab runtime --listen unix:///run/kubelab/runtime.sock --root /var/lib/kubelab/runtime
  crictl --runtime-endpoint unix:///run/kubelab/runtime.sock ps

Containers keep running when the command stops; started again with the same
--root, the runtime finds them. Images come from local archives only
(kubelab runtime import FILE).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := map[string]string{}
			for _, o := range options {
				k, v, ok := strings.Cut(o, "=")
				if !ok {
					return fmt.Errorf("--option %q: want key=value", o)
				}
				opts[k] = v
			}
			p, err := reg.Runtime(name)
			if errors.Is(err, spec.ErrNotFound) && name == process.Name {
				// The process runtime is always available here, even in a
				// Registry that does not list it.
				p, err = process.Plugin(), nil
			}
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rt, closer, err := p.New(ctx, spec.RuntimeConfig{RootDir: root, Options: opts})
			if err != nil {
				return err
			}
			defer func() { _ = closer() }()
			lis, err := criserver.Listen(listen)
			if err != nil {
				return err
			}
			srv := grpc.NewServer()
			criserver.Register(srv, rt)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(lis) }()
			fprintf(cmd.OutOrStdout(), "kubelab runtime %q serving CRI on %s (root %s)\n", name, listen, root)
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				srv.GracefulStop()
				_ = rt.Close(context.Background())
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", DefaultRuntimeEndpoint, "CRI endpoint to serve on (unix://PATH)")
	cmd.Flags().StringVar(&root, "root", DefaultRuntimeRoot, "directory for the runtime's state and images")
	cmd.Flags().StringVar(&name, "runtime", process.Name, "registered runtime plugin to serve")
	cmd.Flags().StringArrayVar(&options, "option", nil, "plugin option key=value (process: pod-cidr, network=bridge|none, instance, image-dir); repeatable")
	cmd.AddCommand(newRuntimeImportCommand(), newRuntimeShimCommand())
	return cmd
}

// newRuntimeImportCommand is `kubelab runtime import FILE...`.
func newRuntimeImportCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import OCI image archives or layouts into the process runtime's image store",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := imagestore.Open(dir)
			if err != nil {
				return err
			}
			for _, f := range args {
				imgs, err := st.Import(cmd.Context(), f)
				if err != nil {
					return fmt.Errorf("import %s: %w", f, err)
				}
				for _, img := range imgs {
					fprintf(cmd.OutOrStdout(), "%s %s\n", img.ID, strings.Join(img.RepoTags, ","))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "image-dir", DefaultRuntimeRoot+"/images", "the image store directory (the process runtime's --root plus /images)")
	return cmd
}

// newRuntimeShimCommand is the hidden command the process runtime
// re-executes itself as (see process.RunInitIfRequested), for binaries
// whose main does not call RunInitIfRequested first.
func newRuntimeShimCommand() *cobra.Command {
	return &cobra.Command{
		Use:    process.ShimCommand + " DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(*cobra.Command, []string) error {
			process.RunInitIfRequested() // exits when this is a shim or an init
			return errors.New("not started by the process runtime")
		},
	}
}
