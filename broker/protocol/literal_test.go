package protocol

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// brokerDir is the broker's source tree, from this package's directory.
const brokerDir = ".."

// notViewerSenders are the broker's directories that build no message to a
// viewer: this package itself, and the benchmark's client, which speaks as
// a viewer.
var notViewerSenders = map[string]bool{"protocol": true, "bench": true}

// TestNoLiteralMessageTypes fails when broker code builds a viewer message
// around this package: a composite literal with a string "type" key
// (map[string]any{"type": "status", …}) or a Type field set from a string
// literal (Event{Type: "status", …}). Messages are this package's payload
// types, whose type is a constant.
func TestNoLiteralMessageTypes(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(brokerDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if notViewerSenders[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if key, ok := kv.Key.(*ast.BasicLit); ok && key.Kind == token.STRING {
				if k, _ := strconv.Unquote(key.Value); k == "type" {
					t.Errorf("%s: a message built with a literal \"type\" key; use a broker/protocol payload", fset.Position(kv.Pos()))
				}
			}
			if key, ok := kv.Key.(*ast.Ident); ok && key.Name == "Type" {
				if v, ok := kv.Value.(*ast.BasicLit); ok && v.Kind == token.STRING {
					t.Errorf("%s: Type set to the literal %s; use a constant (broker/protocol for viewer messages)", fset.Position(kv.Pos()), v.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 20 {
		t.Fatalf("only %d Go files found under %s; the check checks nothing", files, brokerDir)
	}
}
