package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/ciauth"
)

// newHealthcheckCmd is the container's HEALTHCHECK: the final image has no
// shell, curl or wget, so the binary probes its own server.
func newHealthcheckCmd() *cobra.Command {
	var (
		url      string
		timeout  time.Duration
		caBundle string
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a keyless server answers GET /healthz with 200 (for container health checks)",
		Long: `Probe a keyless server's /healthz and exit 0 when it answers 200 OK, 1
otherwise. The container image's HEALTHCHECK runs it: the image has no shell
or HTTP client of its own.

Examples:
  keyless healthcheck
  keyless healthcheck --url http://127.0.0.1:9000/readyz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			// An https server with a private CA: --ca-bundle or AWS_CA_BUNDLE.
			client, err := ciauth.CABundleClient(ciauth.CABundlePath(caBundle, os.Getenv), 0)
			if err != nil {
				return err
			}
			if client == nil {
				client = &http.Client{}
			}
			return probeHealth(ctx, client, url)
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8400/healthz", "URL to probe (/healthz: can serve; /readyz: store and audit trail ready)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	cmd.Flags().StringVar(&caBundle, "ca-bundle", "", "PEM file of the CA certificates to trust for an https URL instead of the system's (default $AWS_CA_BUNDLE)")
	return cmd
}

// probeHealth GETs url and succeeds on 200.
func probeHealth(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}
