package readme

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/server"
)

// TestShellBlocksRunOrMarked (issue 12 item 2): every fenced block of the
// README and docs/ names its language, so no command hides in a plain
// fence; every shell block of the README is either run by
// TestREADMERunsAsWritten or marked no-run; docs/ are not run, so each of
// their shell blocks must be marked.
func TestShellBlocksRunOrMarked(t *testing.T) {
	docs, err := docsWithShell()
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		blocks, _, err := readMarkdown(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			switch {
			case b.Lang == "":
				t.Errorf("%s:%d: a code block without a language (```text for output, ```sh for commands, ```sh %s for commands the README test cannot run)", b.File, b.Line, noRun)
			case !b.shell():
			case doc != "README.md" && !b.marked(noRun):
				t.Errorf("%s:%d: a ```%s block in docs/ is not run by any test: mark it ```%s %s (and make sure it works as written)", b.File, b.Line, b.Lang, b.Lang, noRun)
			case b.Lang == "console" && !b.marked(noRun):
				if _, err := consoleSteps(b.Body); err != nil {
					t.Errorf("%s:%d: console block: %v", b.File, b.Line, err)
				}
			}
		}
	}
}

// TestLinksResolve (issue 12 item 9): every relative link in the README,
// docs/ and the other READMEs resolves to a file in the repository (and,
// with a #fragment, to a heading of that document); the README links
// nowhere outside the repository.
func TestLinksResolve(t *testing.T) {
	files, err := markdownFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found only %v: is the repository root right?", files)
	}
	anchorCache := map[string]map[string]bool{}
	anchorsOf := func(rel string) (map[string]bool, error) {
		if a, ok := anchorCache[rel]; ok {
			return a, nil
		}
		_, prose, err := readMarkdown(rel)
		if err != nil {
			return nil, err
		}
		anchorCache[rel] = anchors(prose)
		return anchorCache[rel], nil
	}
	for _, file := range files {
		_, prose, err := readMarkdown(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(prose) {
			if external(l.Target) {
				if file == "README.md" {
					t.Errorf("%s:%d: the README links outside the repository: %s", file, l.Line, l.Target)
				}
				continue
			}
			target, frag, _ := strings.Cut(l.Target, "#")
			resolved := file
			if target != "" {
				resolved = path.Clean(path.Join(path.Dir(file), target))
				if resolved == ".." || strings.HasPrefix(resolved, "../") || strings.HasPrefix(target, "/") {
					t.Errorf("%s:%d: link %q leaves the repository", file, l.Line, l.Target)
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(resolved))); err != nil {
					t.Errorf("%s:%d: link %q: no such file %s", file, l.Line, l.Target, resolved)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(resolved, ".md") {
				t.Errorf("%s:%d: link %q: a fragment on a file that is not Markdown", file, l.Line, l.Target)
				continue
			}
			a, err := anchorsOf(resolved)
			if err != nil {
				t.Fatal(err)
			}
			if !a[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading #%s", file, l.Line, l.Target, resolved, frag)
			}
		}
	}
}

func TestParseMarkdown(t *testing.T) {
	doc := "# Title\n\ntext [a](b.md)\n\n```sh no-run\necho `x`\n```\n\n1. item\n\n   ```console\n   $ ls \\\n     -l\n   out\n   ```\n\n````text\n```\n````\n"
	blocks, prose, err := parseMarkdown("x.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []block{
		{File: "x.md", Line: 5, Lang: "sh", Attrs: []string{"no-run"}, Body: "echo `x`\n"},
		{File: "x.md", Line: 11, Lang: "console", Attrs: []string{}, Body: "$ ls \\\n  -l\nout\n"},
		{File: "x.md", Line: 17, Lang: "text", Attrs: []string{}, Body: "```\n"},
	}
	if diff := cmp.Diff(want, blocks); diff != "" {
		t.Errorf("blocks (-want +got)\n%s", diff)
	}
	if got := links(prose); !cmp.Equal(got, []link{{3, "b.md"}}) {
		t.Errorf("links = %v", got)
	}
	for want, ok := range map[string]bool{"out": true, "o...t": true, "...": true, "b...a": false, "x": false} {
		if printedLine("a\nout b\n", want) != ok {
			t.Errorf("printedLine(%q) = %v", want, !ok)
		}
	}
	steps, err := consoleSteps(blocks[1].Body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]consoleStep{{Command: "ls \\\n  -l", Want: []string{"out"}}}, steps); diff != "" {
		t.Errorf("console steps (-want +got)\n%s", diff)
	}
	if _, _, err := parseMarkdown("y.md", "```sh\necho\n"); err == nil {
		t.Error("an unclosed fence was accepted")
	}
}

func TestLinksAndAnchors(t *testing.T) {
	prose := []string{
		"## 3. Create the role, trusted only by your project",
		"## Static publishing: real AWS with an unreachable issuer",
		"## `keyless` and [links](x.md)",
		"## Usage",
		"## Usage",
		"see [x](other.md#usage-1), <https://example.com>, https://example.org/a and `https://code.example`",
		"[ref]: ../up.md",
	}
	got := anchors(prose)
	for _, want := range []string{"3-create-the-role-trusted-only-by-your-project", "static-publishing-real-aws-with-an-unreachable-issuer", "keyless-and-links", "usage", "usage-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	wantLinks := []link{{3, "x.md"}, {6, "other.md#usage-1"}, {6, "https://example.com"}, {6, "https://example.org/a"}, {7, "../up.md"}}
	if diff := cmp.Diff(wantLinks, links(prose)); diff != "" {
		t.Errorf("links (-want +got)\n%s", diff)
	}
	for target, want := range map[string]bool{"https://x": true, "mailto:a@b": true, "www.x.org": true, "docs/a.md": false, "#frag": false, "a.md#b:c": false, "//host/x": true} {
		if external(target) != want {
			t.Errorf("external(%q) = %v", target, !want)
		}
	}
}

// TestConfigExcerptsLoad: a YAML block that says it is keyless.yaml (its
// first line is "# keyless.yaml ...") loads with keyless's strict config
// parser, so no documented setting is misspelt or gone.
func TestConfigExcerptsLoad(t *testing.T) {
	docs, err := docsWithShell()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, doc := range docs {
		blocks, _, err := readMarkdown(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if (b.Lang != "yaml" && b.Lang != "yml") || !strings.HasPrefix(b.Body, "# keyless.yaml") {
				continue
			}
			found++
			f := filepath.Join(t.TempDir(), "keyless.yaml")
			if err := os.WriteFile(f, []byte(b.Body), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := server.Defaults()
			if err := cfg.LoadFile(f); err != nil {
				t.Errorf("%s:%d: %v\n%s", b.File, b.Line, err, b.Body)
			}
		}
	}
	if found == 0 {
		t.Error("no keyless.yaml excerpt found in the README or docs/")
	}
}
