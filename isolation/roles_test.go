package isolation

import (
	"reflect"
	"slices"
	"testing"
)

// TestBrowserRoles proves that Browser is exactly its role interfaces: each
// of its methods belongs to one role and to one only, and the method set is
// the one the broker was written against, so narrowing a consumer to a role
// loses nothing and splitting the roles changed no method.
func TestBrowserRoles(t *testing.T) {
	roles := map[string]reflect.Type{
		"Navigator": reflect.TypeFor[Navigator](),
		"Screen":    reflect.TypeFor[Screen](),
		"Input":     reflect.TypeFor[Input](),
		"Tabs":      reflect.TypeFor[Tabs](),
		"Transfers": reflect.TypeFor[Transfers](),
		"Clipboard": reflect.TypeFor[Clipboard](),
		"Printer":   reflect.TypeFor[Printer](),
		"Lifecycle": reflect.TypeFor[Lifecycle](),
	}
	owner := map[string]string{}
	for role, typ := range roles {
		for m := range typ.Methods() {
			if prev, ok := owner[m.Name]; ok {
				t.Errorf("method %s is in both %s and %s", m.Name, prev, role)
			}
			owner[m.Name] = role
		}
	}
	browser := reflect.TypeFor[Browser]()
	var got []string
	for m := range browser.Methods() {
		got = append(got, m.Name)
		role, ok := owner[m.Name]
		if !ok {
			t.Errorf("Browser.%s is in no role interface", m.Name)
			continue
		}
		rm, _ := roles[role].MethodByName(m.Name)
		if rm.Type != m.Type {
			t.Errorf("Browser.%s is %v, its role %s has %v", m.Name, m.Type, role, rm.Type)
		}
	}
	if len(owner) != len(got) {
		t.Errorf("the roles have %d methods, Browser has %d", len(owner), len(got))
	}
	want := []string{
		"AnswerDialog", "Back", "CancelDownload", "Close", "CloseTab", "Compose", "Copy",
		"Done", "DropFiles", "Err", "Forward", "InsertText", "Key", "KeyFrame", "Mouse",
		"Navigate", "PendingDialogs", "Print", "Reload", "SetFiles", "SetFramePace", "SetQuality",
		"SetViewport", "State", "Stop", "SwitchTab", "Wheel",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Browser's methods are\n%v\nwant\n%v", got, want)
	}
}
