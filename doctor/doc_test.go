package doctor

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/doctor.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEveryFindingIsListed: the steps of adding a finding that
// TestEveryCodeIsDocumented cannot see. Every check function
// (func check…(*Input) []Finding) is in Checks, so Diagnose runs it; every
// code the package's source spells ("VDnnn") is among its check's Codes,
// so docs/doctor.md must document it; and every "## VDnnn" section of
// docs/doctor.md is a code some check reports.
func TestEveryFindingIsListed(t *testing.T) {
	listed, runs := map[string]bool{}, map[string]bool{}
	for _, c := range Checks() {
		for _, code := range c.Codes {
			listed[code] = true
		}
		name := runtime.FuncForPC(reflect.ValueOf(c.Run).Pointer()).Name()
		runs[name[strings.LastIndex(name, ".")+1:]] = true
	}
	isCode := regexp.MustCompile(`^VD[0-9A-F]{3}$`)
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no source files: %v", err)
	}
	spelled := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); n.Kind == token.STRING && err == nil && isCode.MatchString(v) {
					spelled[v] = true
					if !listed[v] {
						t.Errorf("%s: the finding %s is in no check's Codes (doctor.Checks), so docs/doctor.md need not document it", fset.Position(n.Pos()), v)
					}
				}
			case *ast.FuncDecl:
				if n.Recv == nil && strings.HasPrefix(n.Name.Name, "check") && isCheck(n.Type) && !runs[n.Name.Name] {
					t.Errorf("%s: %s is not in doctor.Checks: Diagnose never runs it", fset.Position(n.Pos()), n.Name.Name)
				}
			}
			return true
		})
	}
	for _, m := range regexp.MustCompile(`(?m)^## (VD[0-9A-F]{3})\b`).FindAllStringSubmatch(readDoc(t), -1) {
		if !listed[m[1]] {
			t.Errorf("docs/doctor.md documents %s, which no check reports", m[1])
		}
	}
	if len(spelled) == 0 {
		t.Fatal("no finding codes found in the source")
	}
}

// isCheck reports whether ft is func(*Input) []Finding.
func isCheck(ft *ast.FuncType) bool {
	if ft.Params == nil || len(ft.Params.List) != 1 || ft.Results == nil || len(ft.Results.List) != 1 {
		return false
	}
	p, ok := ft.Params.List[0].Type.(*ast.StarExpr)
	if !ok || len(ft.Params.List[0].Names) > 1 {
		return false
	}
	in, ok := p.X.(*ast.Ident)
	r, ok2 := ft.Results.List[0].Type.(*ast.ArrayType)
	if !ok || !ok2 || in.Name != "Input" {
		return false
	}
	f, ok := r.Elt.(*ast.Ident)
	return ok && f.Name == "Finding"
}
