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
	"github.com/keylessci/keyless/internal/keyring"
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
	cmd.AddCommand(newAuditVerifyCmd(), newAuditTailCmd(), newAuditQueryCmd(), newAuditResetHeadCmd())
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
		output    string
		data      string
		keyFiles  []string
		headFile  string
		masterKey string
	)
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check the integrity of an audit trail (exit 0 intact, 1 tampered, 2 cannot check)",
		Long: `Check the integrity of an audit trail, as CloudTrail's log file validation does,
and more: every delivery file must be covered by a signed digest (or be in the
still-unsealed window), digests must chain back from the newest signature, every
event must be where its file's index says, and the journal of unsealed events
must continue its hash chain up to the last checkpoint.

DIR is a keyless data dir or its audit folder; the digest public keys and the
head (the newest digest signature and the journal checkpoint) are then read
from the data dir's store. For a copy of a trail elsewhere, pass --data, or
--public-key (PEM) and --head (JSON).

The head and the trail's seal state are authenticated with a key derived from
the master key, which verify therefore needs: KEYLESS_MASTER_KEY, else
--master-key-file (or KEYLESS_MASTER_KEY_FILE), else the data dir's master.key.
Without it, or when the head is older than this check (written before keyless
authenticated heads; it is adopted when keyless serve next starts), verify
cannot vouch for the trail: deleting the newest digests and rewriting the head
would look the same. It then says NOT AUTHENTICATED and exits 2.

Exit status: 0 intact (and authenticated), 1 not intact (the problems are
listed: tampering, or a key that is not this data dir's), 2 the check could not
run or the trail could not be authenticated (the reason is printed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			auditDir, dataDir := locateTrail(args[0], data)
			if dataDir != "" {
				// Reading an absent store would create an empty one.
				if err := server.RequireStore(dataDir); err != nil {
					return &exitError{2, err}
				}
			}
			master, err := verifyMasterKey(masterKey, dataDir)
			if err != nil {
				return &exitError{2, err}
			}
			opts := audit.VerifyOptions{PublicKeys: map[string]*rsa.PublicKey{}}
			if dataDir != "" {
				fromStore, err := server.AuditVerifyOptions(ctx, dataDir, master)
				if err != nil {
					return &exitError{2, err}
				}
				opts = fromStore
				if opts.PublicKeys == nil {
					opts.PublicKeys = map[string]*rsa.PublicKey{}
				}
			} else if master != nil {
				opts.MACKey = server.AuditMACKey(master)
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
				opts.Head, opts.LoadHead = &h, nil
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
			}
			switch {
			case len(rep.Problems) > 0:
				return &exitError{1, fmt.Errorf("audit trail %s is not intact: %d problem(s)", auditDir, len(rep.Problems))}
			case !rep.Authenticated:
				return &exitError{2, fmt.Errorf("audit trail %s cannot be authenticated: %s", auditDir, rep.Unauthenticated)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	cmd.Flags().StringVar(&data, "data", "", "data dir holding the digest keys and the newest signature")
	cmd.Flags().StringArrayVar(&keyFiles, "public-key", nil, "PEM public key of a digest signing key (repeatable)")
	cmd.Flags().StringVar(&headFile, "head", "", "JSON file with the newest digest head")
	cmd.Flags().StringVar(&masterKey, "master-key-file", "", "file with the base64 master key (default: KEYLESS_MASTER_KEY, KEYLESS_MASTER_KEY_FILE, then DATA/master.key)")
	return cmd
}

// verifyMasterKey finds the master key that authenticates a trail's head:
// KEYLESS_MASTER_KEY, the flag, KEYLESS_MASTER_KEY_FILE, then the data
// dir's master.key (the variable and a key file that is there must agree).
// nil when there is none.
func verifyMasterKey(flagFile, dataDir string) (*keyring.Master, error) {
	file := flagFile
	if file == "" {
		file = os.Getenv("KEYLESS_MASTER_KEY_FILE")
	}
	if v := os.Getenv("KEYLESS_MASTER_KEY"); v != "" {
		// A key file that is also there must agree with the variable.
		if file == "" && dataDir != "" {
			file = server.MasterKeyPath(dataDir)
		}
		return keyring.LoadMaster(v, file, false, nil)
	}
	if file != "" {
		return keyring.LoadMaster("", file, false, nil)
	}
	if dataDir == "" {
		return nil, nil
	}
	if _, err := os.Stat(server.MasterKeyPath(dataDir)); err != nil {
		return nil, nil
	}
	return keyring.LoadMaster("", server.MasterKeyPath(dataDir), false, nil)
}

func newAuditResetHeadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reset-head DATA",
		Short: "Forget the audit head of a data dir whose trail was moved aside, so keyless serve starts a new trail",
		Long: `keyless serve refuses to extend a trail whose authenticated head it cannot
reconcile with the trail on disk (a journal that lost acknowledged events, a
seal state or head put back from an older copy, a head that does not
authenticate). After keeping the evidence (run keyless audit verify, then move
DATA/audit aside), reset-head forgets the head kept in the store, and the next
start begins a new trail in an empty DATA/audit. It prints the head it forgot.
It refuses while DATA/audit still holds a trail. Stop keyless serve first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := server.RequireStore(args[0]); err != nil {
				return &exitError{2, err}
			}
			old, err := server.ResetAuditHead(cmd.Context(), args[0])
			if err != nil {
				return &exitError{2, err}
			}
			out := cmd.OutOrStdout()
			if old == nil {
				fmt.Fprintln(out, "no audit head was kept; nothing to reset")
				return nil
			}
			b, err := json.MarshalIndent(old, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "forgot the audit head (keep it with the old trail):\n%s\n", b)
			return nil
		},
	}
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
