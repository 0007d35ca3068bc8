package internal_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs fails when a package under internal/, cmd/, test/ or
// integrations/ has no package doc comment saying what it owns.
func TestPackageDocs(t *testing.T) {
	roots := []string{".", "../cmd", "../test", "../integrations"}
	for _, root := range roots {
		if _, err := os.Stat(root); err != nil {
			continue
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != "." {
				if d.IsDir() && d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			docs := map[string]bool{} // package name → documented
			for _, e := range entries {
				if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
					continue
				}
				f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(path, e.Name()), nil, parser.ParseComments|parser.PackageClauseOnly)
				if err != nil {
					return err
				}
				name := f.Name.Name
				text := ""
				if f.Doc != nil {
					text = strings.TrimSpace(f.Doc.Text())
				}
				docs[name] = docs[name] || strings.HasPrefix(text, "Package "+name) || (name == "main" && strings.HasPrefix(text, "Command "))
			}
			for name, ok := range docs {
				if !ok {
					t.Errorf("package %s (%s) has no doc comment starting with %q", name, path, "Package "+name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
