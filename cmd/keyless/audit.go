package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/server"
)

// exitError carries a chosen exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with the CloudTrail-format audit trail",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditTailCmd())
	return cmd
}

// locateTrail accepts a data dir or its audit folder and returns both.
func locateTrail(dir, dataFlag string) (auditDir, dataDir string) {
	if dataFlag != "" {
		if _, err := os.Stat(filepath.Join(dir, "AWSLogs")); err == nil || filepath.Base(dir) == "audit" {
			return dir, dataFlag
		}
		return server.AuditDir(dataFlag), dataFlag
	}
	if _, err := os.Stat(server.DBPath(dir)); err == nil {
		return server.AuditDir(dir), dir
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if _, err := os.Stat(server.DBPath(parent)); err == nil {
		return dir, parent
	}
	return dir, ""
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		output   string
		data     string
		keyFiles []string
		headFile string
	)
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check the integrity of an audit trail (exit 0 intact, 1 tampered, 2 cannot check)",
		Long: `Check the integrity of an audit trail, as CloudTrail's log file validation does,
and more: every delivery file must be covered by a signed digest (or be in the
still-unsealed window), digests must chain back from the newest signature, and
every event must be where its file's index says.

DIR is a keyless data dir or its audit folder; the digest public keys and the
newest digest signature are then read from the data dir's store. For a copy of
a trail elsewhere, pass --data, or --public-key (PEM) and --head (JSON).

Exit status: 0 intact, 1 not intact (the problems are listed), 2 the check
could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			auditDir, dataDir := locateTrail(args[0], data)
			opts := audit.VerifyOptions{PublicKeys: map[string]*rsa.PublicKey{}}
			if dataDir != "" {
				fromStore, err := server.OpenAuditVerifier(ctx, dataDir)
				if err != nil {
					return &exitError{2, err}
				}
				for fp, k := range fromStore.PublicKeys {
					opts.PublicKeys[fp] = k
				}
				opts.Head = fromStore.Head
			}
			for _, f := range keyFiles {
				k, err := readPublicKey(f)
				if err != nil {
					return &exitError{2, err}
				}
				opts.PublicKeys[audit.Fingerprint(k)] = k
			}
			if headFile != "" {
				b, err := os.ReadFile(headFile)
				if err != nil {
					return &exitError{2, err}
				}
				var h audit.Head
				if err := json.Unmarshal(b, &h); err != nil {
					return &exitError{2, fmt.Errorf("%s: %w", headFile, err)}
				}
				opts.Head = &h
			}
			if len(opts.PublicKeys) == 0 {
				return &exitError{2, errors.New("no digest public key: give a keyless data dir (or --data DIR), or --public-key FILE")}
			}
			rep, err := audit.Verify(ctx, auditDir, opts)
			if err != nil {
				return &exitError{2, err}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(out, rep.String())
				if opts.Head == nil {
					fmt.Fprintln(out, "note: no newest-digest signature was available; deleting the newest digests cannot be detected without it")
				}
			}
			if !rep.Intact {
				return &exitError{1, fmt.Errorf("audit trail %s is not intact: %d problem(s)", auditDir, len(rep.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	cmd.Flags().StringVar(&data, "data", "", "data dir holding the digest keys and the newest signature")
	cmd.Flags().StringArrayVar(&keyFiles, "public-key", nil, "PEM public key of a digest signing key (repeatable)")
	cmd.Flags().StringVar(&headFile, "head", "", "JSON file with the newest digest head")
	return cmd
}

func readPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		if rk, err2 := x509.ParsePKCS1PublicKey(blk.Bytes); err2 == nil {
			return rk, nil
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	return rk, nil
}

func newAuditTailCmd() *cobra.Command {
	var (
		follow bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "tail DIR",
		Short: "Print the trail's events in order (sealed files, then the live journal); --follow waits for more",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			auditDir, _ := locateTrail(args[0], "")
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			for e, err := range audit.Read(cmd.Context(), auditDir, audit.ReadOptions{Follow: follow}) {
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if output == "json" {
					if err := enc.Encode(e.Event); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(out, eventLine(e.Event))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().StringVar(&output, "output", "text", "text (one line per event) or json (one CloudTrail record per line)")
	return cmd
}

func eventLine(ev *audit.Event) string {
	who := "-"
	if ev.UserIdentity != nil {
		switch {
		case ev.UserIdentity.ARN != "":
			who = ev.UserIdentity.ARN
		case ev.UserIdentity.UserName != "":
			who = ev.UserIdentity.UserName
		}
	}
	outcome := "ok"
	if ev.ErrorCode != "" {
		outcome = ev.ErrorCode
	}
	t := ev.EventTime.UTC().Format(time.RFC3339)
	return strings.Join([]string{t, ev.EventName, outcome, who, ev.SourceIPAddress}, "  ")
}
