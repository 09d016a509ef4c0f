// Command doccheck fails when an exported identifier in the repository's
// non-test Go files has no doc comment. `make lint` runs it over the whole
// module; it prints one "file:line: name" per missing comment.
//
// It checks package-level funcs, methods on exported types, types, and
// consts and vars (a commented group covers its members, as godoc shows
// them). Generated files ("Code generated ... DO NOT EDIT.") and testdata
// directories are skipped.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	roots := os.Args[1:]
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var missing []string
	for _, root := range roots {
		m, err := Check(root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "doccheck:", err)
			os.Exit(2)
		}
		missing = append(missing, m...)
	}
	for _, m := range missing {
		fmt.Println(m)
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "doccheck: %d exported identifiers without a doc comment\n", len(missing))
		os.Exit(1)
	}
}

// Check walks root and returns "file:line: name" for every exported
// identifier without a doc comment, sorted.
func Check(root string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "_out" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		for _, m := range checkFile(f) {
			out = append(out, fmt.Sprintf("%s:%d: %s", path, fset.Position(m.pos).Line, m.name))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

type finding struct {
	pos  token.Pos
	name string
}

// exportedType reports whether a method receiver's type is exported.
func exportedType(recv *ast.FieldList) bool {
	if recv == nil || len(recv.List) == 0 {
		return true
	}
	t := recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return false
		}
	}
}

func checkFile(f *ast.File) []finding {
	var out []finding
	if f.Name.Name == "main" {
		// A command's identifiers are not an API, but its doc still is.
		return nil
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() && exportedType(d.Recv) && d.Doc == nil {
				out = append(out, finding{d.Pos(), d.Name.Name})
			}
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			grouped := d.Lparen.IsValid() && d.Doc != nil
			for _, s := range d.Specs {
				switch sp := s.(type) {
				case *ast.TypeSpec:
					if sp.Name.IsExported() && sp.Doc == nil && d.Doc == nil {
						out = append(out, finding{sp.Pos(), sp.Name.Name})
					}
				case *ast.ValueSpec:
					if grouped || sp.Doc != nil || sp.Comment != nil || (!d.Lparen.IsValid() && d.Doc != nil) {
						continue
					}
					for _, n := range sp.Names {
						if n.IsExported() {
							out = append(out, finding{n.Pos(), n.Name})
							break
						}
					}
				}
			}
		}
	}
	return out
}
