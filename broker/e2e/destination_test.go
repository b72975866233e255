package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/auth"
)

// refuseDestinations tries, as an admin of the running broker b, to make
// departmental destinations of the broker's own data directory and its
// parts, of a directory above it, of system directories and of a link into
// the trail; every one must be refused and none registered (issue 9).
func refuseDestinations(t *testing.T, b *brokerUnderTest) {
	t.Helper()
	const admin = "destination-admin"
	if err := b.srv.Auth().AddUser(admin, auth.Admin, staffPassword); err != nil {
		t.Fatal(err)
	}
	c := staffClient(t, b, admin)
	link := filepath.Join(t.TempDir(), "share")
	if err := os.Symlink(filepath.Join(b.data, "audit"), link); err != nil {
		t.Fatal(err)
	}
	post := func(dir string) (int, string) {
		body, _ := json.Marshal(map[string]string{"name": "ikyoku", "dir": dir})
		req, _ := http.NewRequest("POST", b.url+"/api/admin/destinations", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", b.url)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	for _, dir := range []string{
		b.data, filepath.Join(b.data, "audit"), filepath.Join(b.data, "profiles"), filepath.Join(b.data, "quarantine"),
		filepath.Dir(b.data), "/", "/etc", "/var/log", link,
	} {
		if status, body := post(dir); status != http.StatusBadRequest || !strings.Contains(body, "directory of the broker or the system") {
			t.Errorf("destination %s: %d %s", dir, status, body)
		}
	}
	if list, err := b.srv.Transfers().Destinations(); err != nil || len(list) != 0 {
		t.Errorf("destinations registered: %+v %v", list, err)
	}
}
