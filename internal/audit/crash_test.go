package audit

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

// The crash tests run the trail in a child process (this test binary,
// re-executed with crashEnv set), acknowledge durable events on stdout, and
// kill it with SIGKILL: mid-burst at random points, and at each step of
// sealing. The parent then reopens the trail and checks that every
// acknowledged event is there exactly once and that the trail verifies.
const (
	crashEnv      = "KEYLESS_AUDIT_CRASH_CHILD"
	crashDirEnv   = "KEYLESS_AUDIT_CRASH_DIR"
	crashHeadEnv  = "KEYLESS_AUDIT_CRASH_HEAD"
	crashBlockEnv = "KEYLESS_AUDIT_CRASH_BLOCK_AT"
	// crashSpeed makes the child's clock run 20000 times faster than real
	// time, so an hour (a digest) passes every 180 ms.
	crashSpeed = 20000
)

// TestCrashChild is the child process body; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashEnv) == "" {
		t.Skip("helper process for the crash tests")
	}
	go func() { // never outlive a parent that died
		time.Sleep(30 * time.Second)
		os.Exit(3)
	}()
	var out sync.Mutex
	say := func(s string) {
		out.Lock()
		defer out.Unlock()
		os.Stdout.WriteString(s + "\n") // unbuffered: a line printed is a line the parent can read
	}
	start := time.Now()
	now := func() time.Time { return t0.Add(time.Since(start) * crashSpeed) }
	block := os.Getenv(crashBlockEnv)
	opts := Options{
		Dir: os.Getenv(crashDirEnv), AccountID: testAccount, Region: testRegion,
		SigningKey: testSigningKey(t), Head: FileHeadStore{Path: os.Getenv(crashHeadEnv)}, MACKey: testMACKey,
		// Checkpoints every 3 ms (real time): many kills land between a
		// checkpoint and the next fsync, or inside a checkpoint's save.
		Now: now, SealInterval: -1, MaxEventsPerFile: 50, CheckpointInterval: 3 * time.Millisecond,
		sealHook: func(step string) {
			if step == block {
				say("AT " + step)
				select {} // wait for SIGKILL here
			}
		},
	}
	tr, err := Open(context.Background(), opts)
	if err != nil {
		say("ERROR " + err.Error())
		os.Exit(2)
	}
	b := &Builder{AccountID: testAccount, Region: testRegion, Now: now, Rand: crand.Reader}
	say("READY")
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				ev := callEvent(t, b, fmt.Sprintf("W%dE%d", w, i))
				if err := tr.Record(context.Background(), ev, Durable()); err != nil {
					say("ERROR " + err.Error())
					os.Exit(2)
				}
				say("ACK " + ev.EventID)
			}
		}()
	}
	for {
		time.Sleep(2 * time.Millisecond)
		if err := tr.Seal(context.Background()); err != nil {
			say("ERROR " + err.Error())
			os.Exit(2)
		}
	}
}

// runCrashChild starts a child, waits until until(line, acks) is true, then
// SIGKILLs it and collects every acknowledgement it printed.
func runCrashChild(t *testing.T, dir, headPath, blockAt string, until func(line string, acks int) bool) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"=1", crashDirEnv+"="+dir, crashHeadEnv+"="+headPath, crashBlockEnv+"="+blockAt)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var acked []string
	killed := false
	deadline := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "ACK ") && len(line) == 4+36:
			acked = append(acked, line[4:])
		case strings.HasPrefix(line, "ERROR "):
			t.Errorf("child: %s", line)
		}
		if !killed && until(line, len(acked)) {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before being killed: %v", err)
	}
	return acked
}

// checkAfterCrash recovers the trail and checks the acknowledged events.
func checkAfterCrash(t *testing.T, dir, headPath string, acked []string) {
	t.Helper()
	hs := FileHeadStore{Path: headPath}
	later := newClock(t0.Add(60 * 24 * time.Hour)) // after anything the fast child clock reached
	o := testOptions(t, dir, later, nil)
	o.Head = hs
	ctx := context.Background()

	// Recovery alone must leave a trail that verifies (with an unsealed window).
	tr, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	tr.crash()
	head, err := hs.Load(ctx)
	if err != nil && err != ErrNoHead {
		t.Fatal(err)
	}
	var hp *Head
	if err == nil {
		hp = &head
	}
	if rep := verifyTrail(t, dir, hp); !rep.Intact {
		t.Fatalf("recovered trail does not verify:\n%s", rep)
	}

	// Then a clean close seals and signs everything.
	tr, err = Open(ctx, o)
	if err != nil {
		t.Fatalf("second reopen: %v", err)
	}
	later.Advance(time.Hour)
	if err := tr.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	head, err = hs.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyTrail(t, dir, &head)
	if !rep.Intact || rep.PendingFiles != 0 || rep.JournalEvents != 0 {
		t.Fatalf("trail after close:\n%s", rep)
	}
	count := map[string]int{}
	for _, e := range readAll(t, dir) {
		count[e.Event.EventID]++
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s present %d times", id, n)
		}
	}
	for _, id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged event %s lost", id)
		}
	}
	if rep.SignedEvents != len(count) {
		t.Errorf("verify counted %d events, read %d", rep.SignedEvents, len(count))
	}
	t.Logf("%d acknowledged, %d in the trail (the rest were written but not yet acknowledged when killed), %d digests",
		len(acked), len(count), rep.Digests)
}

// TestCrashMidBurst kills the child at random points of a durable burst
// (with seals running every 2 ms, so many kills land inside a seal).
func TestCrashMidBurst(t *testing.T) {
	if testenv.Short() {
		t.Skip("spawns processes")
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for i := range 10 {
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			dir, headPath := t.TempDir(), filepath.Join(t.TempDir(), "head.json")
			var acked []string
			// Two crashes in a row on the same trail: the second child
			// recovers from the first crash itself.
			for range 2 {
				n := 20 + rng.IntN(300)
				acked = append(acked, runCrashChild(t, dir, headPath, "", func(_ string, acks int) bool { return acks >= n })...)
			}
			checkAfterCrash(t, dir, headPath, acked)
		})
	}
}

// TestCrashDuringSeal kills the child at each crash-relevant step of sealing
// and of digest writing.
func TestCrashDuringSeal(t *testing.T) {
	if testenv.Short() {
		t.Skip("spawns processes")
	}
	for _, step := range []string{
		"seal-intent-saved", "seal-files-written", "seal-state-saved", "seal-segments-retired",
		"digest-intent-saved", "digest-written", "digest-state-saved", "head-saved",
	} {
		t.Run(step, func(t *testing.T) {
			dir, headPath := t.TempDir(), filepath.Join(t.TempDir(), "head.json")
			acked := runCrashChild(t, dir, headPath, step, func(line string, _ int) bool { return line == "AT "+step })
			if step == "digest-written" {
				// The digest file exists but nothing references it yet.
				var hp *Head
				if h, err := (FileHeadStore{Path: headPath}).Load(context.Background()); err == nil {
					hp = &h
				}
				if rep := verifyTrail(t, dir, hp); rep.Intact || !hasProblem(rep, ProblemDigestUnanchored, "") {
					t.Errorf("an unreferenced digest should not verify before recovery:\n%s", rep)
				}
			}
			checkAfterCrash(t, dir, headPath, acked)
		})
	}
}
