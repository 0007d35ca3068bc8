// Package audit owns keyless's tamper-evident audit trail in AWS CloudTrail's
// own format: the event model (userIdentity, requestParameters, ... with the
// exact JSON field names and types CloudTrail uses), the builders the STS and
// IAM layers fill, the [Recorder] hook every API call goes through, a
// write-ahead journal with group commit, sealing of the journal into
// CloudTrail delivery files with signed hourly digest files, verification of a
// trail, readers that stream a trail in order (and follow it), and extra sinks
// (JSON lines, fan-out).
//
// [Scan] is the one reader of raw events for queries and policy generation:
// keyless trails (sealed files and journal, each event once), CloudTrail
// delivery and export files, NDJSON, directories in CloudTrail's S3 layout
// and stdin, gzipped or not, validated and cut into batches for parallel
// workers with memory bounded whatever the input size.
//
// It is a library: it knows nothing of HTTP servers or of keyless's store.
// The caller injects the clock, the randomness, the digest signing key, the
// [HeadStore] that keeps the newest digest signature outside the trail, and
// the MAC key (derived from the master key) that authenticates the head and
// the seal state.
//
// # On-disk layout (under the trail directory DIR)
//
//	DIR/journal/<first seq>.wal       write-ahead journal segments (framed, CRC-32C, hash-chained)
//	DIR/journal/seal-state.json       what has been sealed; files awaiting a digest (MAC'd)
//	DIR/journal/tmp/                  files being written atomically
//	DIR/index/<log file path>.idx     per-event hashes of each delivery file (diagnostics)
//	DIR/AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 chars>.json.gz
//	DIR/AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHMMSSZ>.json.gz
//
// Delivery and digest files are byte-for-byte what CloudTrail log-file
// validation expects (same digest fields, same string to sign, SHA256withRSA),
// so the published algorithm validates them. The digest public key
// fingerprint, which AWS leaves undocumented, is defined by [Fingerprint].
//
// # Unsealed window
//
// Events that have not yet been covered by a signed digest are not protected
// by a signature (as CloudTrail events not yet delivered). They are the
// journal segments and the delivery files listed as pending in
// seal-state.json. They are protected against someone who can write the
// trail directory and the head store but lacks the MAC key: the seal state
// (with the pending files' hashes) carries a MAC, the journal's frames are
// hash-chained, and the head records an authenticated checkpoint of the
// chain every Options.CheckpointInterval (auth.go, chain.go). [Verify] checks
// that window (MACs, chain, checkpoint, frame CRCs, sequence continuity,
// hashes recorded at sealing time) and flags any delivery file that is
// neither referenced by a digest nor pending.
//
// # Confinement
//
// Every path the trail reads from its own files, digests or the head store
// is checked against the shapes keyless writes and opened through an
// [os.Root] on the trail directory, never through a symbolic link
// (confine.go): a data-dir writer cannot make keyless delete or write files
// elsewhere.
package audit
