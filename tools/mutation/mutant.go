package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// Mutant is one small change to one source file: the bytes [Start, End) of
// File are replaced by New. Mutants are found on the syntax tree and applied
// to the source text, so everything else in the file stays byte for byte.
type Mutant struct {
	// File is the source file's path.
	File string `json:"file"`
	// Line and Col are where the change starts (1-based).
	Line int `json:"line"`
	Col  int `json:"col"`
	// Operator names the kind of mutation (see the Op* constants).
	Operator string `json:"operator"`
	// Old and New are the replaced text and its replacement.
	Old string `json:"old"`
	New string `json:"new"`
	// Start and End are byte offsets of Old in the file.
	Start int `json:"-"`
	End   int `json:"-"`
}

// The mutation operators.
const (
	// OpCompare flips a comparison: < ↔ <=, > ↔ >=, == ↔ !=.
	OpCompare = "flip-comparison"
	// OpLogic swaps && and ||.
	OpLogic = "swap-logic"
	// OpNot drops a logical negation: !x becomes x.
	OpNot = "drop-not"
	// OpArith swaps + and - (and += with -=, ++ with --).
	OpArith = "swap-arith"
	// OpOffByOne moves an integer constant by one (n → n+1, and n → n-1 for n > 0).
	OpOffByOne = "off-by-one"
	// OpRemoveStmt removes one statement of an if-body.
	OpRemoveStmt = "remove-if-body-stmt"
	// OpEarlyReturn makes a function with no results return at its start
	// of an if-body (the branch's work is skipped).
	OpEarlyReturn = "return-early"
)

// ID names the mutant stably while its file is unchanged:
// FILE:LINE:COL/OPERATOR/NEW (NEW empty for a removal).
func (m Mutant) ID() string {
	return fmt.Sprintf("%s:%d:%d/%s/%s", m.File, m.Line, m.Col, m.Operator, strings.ReplaceAll(m.New, " ", ""))
}

// String is the mutant as a report prints it: file:line: operator `old` → `new`.
func (m Mutant) String() string {
	return fmt.Sprintf("%s:%d: %s `%s` → `%s`", m.File, m.Line, m.Operator, short(m.Old), short(m.New))
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

var flipped = map[token.Token]string{
	token.LSS: "<=", token.LEQ: "<", token.GTR: ">=", token.GEQ: ">",
	token.EQL: "!=", token.NEQ: "==",
	token.LAND: "||", token.LOR: "&&",
	token.ADD: "-", token.SUB: "+",
	token.ADD_ASSIGN: "-=", token.SUB_ASSIGN: "+=",
	token.INC: "--", token.DEC: "++",
}

// Find returns every mutant of the Go source src (file name name), in
// source order. It is pure: src is not modified.
func Find(name string, src []byte) ([]Mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []Mutant
	add := func(op string, start, end token.Pos, repl string) {
		p := fset.Position(start)
		s, e := fset.Position(start).Offset, fset.Position(end).Offset
		out = append(out, Mutant{File: name, Line: p.Line, Col: p.Column, Operator: op, Old: string(src[s:e]), New: repl, Start: s, End: e})
	}
	opPos := func(pos token.Pos, tok token.Token) (token.Pos, token.Pos) {
		return pos, pos + token.Pos(len(tok.String()))
	}
	// noResults tracks, for each function being walked, whether it returns
	// nothing (a bare return compiles there).
	var noResults []bool
	var walk func(n ast.Node) bool
	walk = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			if n.Body == nil {
				return false
			}
			noResults = append(noResults, n.Type.Results == nil || len(n.Type.Results.List) == 0)
			ast.Inspect(n.Body, walk)
			noResults = noResults[:len(noResults)-1]
			return false
		case *ast.FuncLit:
			noResults = append(noResults, n.Type.Results == nil || len(n.Type.Results.List) == 0)
			ast.Inspect(n.Body, walk)
			noResults = noResults[:len(noResults)-1]
			return false
		case *ast.BinaryExpr:
			if r, ok := flipped[n.Op]; ok {
				op := OpCompare
				switch n.Op {
				case token.LAND, token.LOR:
					op = OpLogic
				case token.ADD, token.SUB:
					op = OpArith
				}
				s, e := opPos(n.OpPos, n.Op)
				add(op, s, e, r)
			}
		case *ast.AssignStmt:
			if r, ok := flipped[n.Tok]; ok {
				s, e := opPos(n.TokPos, n.Tok)
				add(OpArith, s, e, r)
			}
		case *ast.IncDecStmt:
			s, e := opPos(n.TokPos, n.Tok)
			add(OpArith, s, e, flipped[n.Tok])
		case *ast.UnaryExpr:
			if n.Op == token.NOT {
				add(OpNot, n.OpPos, n.OpPos+1, "")
			}
		case *ast.BasicLit:
			if n.Kind == token.INT {
				if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
					add(OpOffByOne, n.Pos(), n.End(), strconv.FormatInt(v+1, 10))
					if v > 0 {
						add(OpOffByOne, n.Pos(), n.End(), strconv.FormatInt(v-1, 10))
					}
				}
			}
		case *ast.IfStmt:
			for _, st := range n.Body.List {
				switch st.(type) {
				case *ast.ExprStmt, *ast.AssignStmt, *ast.IncDecStmt, *ast.ReturnStmt, *ast.BranchStmt, *ast.SendStmt:
					add(OpRemoveStmt, st.Pos(), st.End(), "")
				}
			}
			if len(noResults) > 0 && noResults[len(noResults)-1] && len(n.Body.List) > 0 {
				if _, isRet := n.Body.List[0].(*ast.ReturnStmt); !isRet {
					first := n.Body.List[0]
					p := fset.Position(first.Pos()).Offset
					out = append(out, Mutant{File: name, Line: fset.Position(first.Pos()).Line, Col: fset.Position(first.Pos()).Column,
						Operator: OpEarlyReturn, Old: "", New: "return; ", Start: p, End: p})
				}
			}
		}
		return true
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			walk(fd)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// Apply returns src with m applied; src is not modified.
func Apply(src []byte, m Mutant) []byte {
	out := make([]byte, 0, len(src)+len(m.New))
	out = append(out, src[:m.Start]...)
	out = append(out, m.New...)
	return append(out, src[m.End:]...)
}
