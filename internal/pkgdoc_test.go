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
			pkgs, err := parser.ParseDir(token.NewFileSet(), path, func(fi fs.FileInfo) bool {
				return !strings.HasSuffix(fi.Name(), "_test.go")
			}, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				return err
			}
			for name, pkg := range pkgs {
				documented := false
				for _, f := range pkg.Files {
					if f.Doc != nil && strings.HasPrefix(strings.TrimSpace(f.Doc.Text()), "Package "+name) ||
						f.Doc != nil && name == "main" && strings.HasPrefix(strings.TrimSpace(f.Doc.Text()), "Command ") {
						documented = true
					}
				}
				if !documented {
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
