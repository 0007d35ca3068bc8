package readme

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// repoRoot is the repository root, relative to this package's directory
// (where `go test` runs it).
const repoRoot = "../.."

// noRun is the word after a fence's language that marks a block the README
// test does not run (it needs a network, a CI system or real AWS):
// "```sh no-run".
const noRun = "no-run"

// shellLangs are the languages whose blocks are commands to paste.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "zsh": true, "shell-session": true}

// block is one fenced code block of a Markdown file.
type block struct {
	File  string   // path relative to the repository root
	Line  int      // line of the opening fence (1-based)
	Lang  string   // first word of the info string ("" when none)
	Attrs []string // the info string's other words
	Body  string   // content, with the fence's indentation removed
}

func (b block) shell() bool { return shellLangs[b.Lang] }

func (b block) marked(attr string) bool {
	for _, a := range b.Attrs {
		if a == attr {
			return true
		}
	}
	return false
}

func (b block) String() string {
	return fmt.Sprintf("%s:%d (```%s)\n%s", b.File, b.Line, strings.Join(append([]string{b.Lang}, b.Attrs...), " "), b.Body)
}

var fenceRE = regexp.MustCompile("^( {0,3}(?:[ \\t]*))(`{3,}|~{3,})(.*)$")

// parseMarkdown splits a Markdown document into its fenced code blocks and
// its prose lines (outside any fence; code blocks' lines are blank there so
// that line numbers stay right).
func parseMarkdown(file, text string) (blocks []block, prose []string, err error) {
	lines := strings.Split(text, "\n")
	var cur *block
	var indent, fence string
	var body []string
	for i, line := range lines {
		if cur == nil {
			m := fenceRE.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(m[2], "`") && strings.Contains(m[3], "`") {
				prose = append(prose, line)
				continue
			}
			words := strings.Fields(m[3])
			cur = &block{File: file, Line: i + 1}
			if len(words) > 0 {
				cur.Lang, cur.Attrs = words[0], words[1:]
			}
			indent, fence, body = m[1], m[2], nil
			prose = append(prose, "")
			continue
		}
		prose = append(prose, "")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, fence[:1]) && strings.Trim(trimmed, fence[:1]) == "" && len(trimmed) >= len(fence) {
			cur.Body = strings.Join(body, "\n")
			if len(body) > 0 {
				cur.Body += "\n"
			}
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		body = append(body, strings.TrimPrefix(line, indent))
	}
	if cur != nil {
		return nil, nil, fmt.Errorf("%s:%d: code fence never closed", file, cur.Line)
	}
	return blocks, prose, nil
}

// readMarkdown parses a file given relative to the repository root.
func readMarkdown(rel string) ([]block, []string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		return nil, nil, err
	}
	return parseMarkdown(rel, string(b))
}

// consoleStep is one "$ command" of a console block and the output lines
// shown under it.
type consoleStep struct {
	Command string
	Want    []string
}

// consoleSteps reads a console block: lines starting with "$ " are
// commands (a trailing backslash continues one), every other non-blank line
// is output the command before it must print.
func consoleSteps(body string) ([]consoleStep, error) {
	var steps []consoleStep
	cont := false
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		switch {
		case cont:
			steps[len(steps)-1].Command += "\n" + line
		case strings.HasPrefix(line, "$ "):
			steps = append(steps, consoleStep{Command: strings.TrimPrefix(line, "$ ")})
		case strings.TrimSpace(line) == "":
			continue
		case len(steps) == 0:
			return nil, fmt.Errorf("output %q before any $ command", line)
		default:
			steps[len(steps)-1].Want = append(steps[len(steps)-1].Want, strings.TrimSpace(line))
			continue
		}
		cont = strings.HasSuffix(line, "\\")
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("no $ command")
	}
	return steps, nil
}

// markdownFiles are the documents whose links are checked, relative to the
// repository root: the README, docs/, and every README below the root.
func markdownFiles() ([]string, error) {
	var out []string
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".md") && (d.Name() == "README.md" || strings.HasPrefix(rel, "docs"+string(filepath.Separator))) {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

// docsWithShell are the documents whose shell blocks must be run or
// marked: the README and docs/*.md.
func docsWithShell() ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	out := []string{"README.md"}
	for _, d := range docs {
		rel, _ := filepath.Rel(repoRoot, d)
		out = append(out, filepath.ToSlash(rel))
	}
	return out, nil
}

var (
	inlineCodeRE = regexp.MustCompile("`+[^`]*`+")
	linkRE       = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refDefRE     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$`)
	autolinkRE   = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9+.-]*:[^\s>]*)>`)
	bareURLRE    = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s)>\]]+`)
	headingRE    = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	htmlAnchorRE = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// link is one link target found in a document's prose.
type link struct {
	Line   int
	Target string
}

// links returns the link targets of a document's prose: inline links and
// images, reference definitions, autolinks and bare URLs (which GitHub
// turns into links), outside code.
func links(prose []string) []link {
	var out []link
	for i, line := range prose {
		line = inlineCodeRE.ReplaceAllString(line, "")
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		if m := refDefRE.FindStringSubmatch(line); m != nil {
			out = append(out, link{i + 1, m[1]})
		}
		stripped := linkRE.ReplaceAllString(line, "")
		for _, m := range autolinkRE.FindAllStringSubmatch(stripped, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		stripped = autolinkRE.ReplaceAllString(stripped, "")
		for _, m := range bareURLRE.FindAllString(stripped, -1) {
			out = append(out, link{i + 1, m})
		}
	}
	return out
}

// external reports whether a link target leaves the repository by scheme
// (http:, mailto:, ...) or host.
func external(target string) bool {
	if strings.HasPrefix(strings.ToLower(target), "www.") || strings.HasPrefix(target, "//") {
		return true
	}
	i := strings.IndexAny(target, ":/#?")
	return i > 0 && target[i] == ':'
}

// anchors returns the ids GitHub gives a document's headings (and explicit
// HTML anchors).
func anchors(prose []string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose {
		if m := htmlAnchorRE.FindAllStringSubmatch(line, -1); m != nil {
			for _, a := range m {
				out[a[1]] = true
			}
		}
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := slugify(m[2])
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

var mdLinkTextRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// slugify is GitHub's heading id: the heading's text (links reduced to their
// text) lowercased, every character but letters, digits, spaces, hyphens
// and underscores removed, spaces turned into hyphens.
func slugify(heading string) string {
	heading = mdLinkTextRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
