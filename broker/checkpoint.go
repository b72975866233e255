package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// checkpointKey loads the key that signs the audit trail's checkpoints
// (audit.checkpoint_key). It refuses a key inside the data directory
// (symbolic links resolved), one that group or others may read or write,
// and a file that is not one Ed25519 key. Without a key it warns that the
// end of the trail is protected only by the syslog copy, and returns nil;
// in demo mode it makes one beside the data directory instead.
func (s *Server) checkpointKey() (*audit.SigningKey, error) {
	path := s.cfg.Audit.CheckpointKey
	if path == "" && s.cfg.Demo {
		path = filepath.Clean(s.cfg.Data) + ".checkpoint.key"
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if _, err := audit.GenerateKey(path); err != nil {
				return nil, fmt.Errorf("demo: make the audit checkpoint key: %w", err)
			}
		}
		fmt.Fprintf(s.out, "\nThe audit trail's checkpoints are signed with the demo key %s. Check the trail with:\n\n"+
			"    shoji audit verify --data %s --key %s.pub\n", path, s.cfg.Data, path)
	}
	if path == "" {
		msg := "no audit checkpoint key (audit.checkpoint_key): the end of the audit trail is protected only by the syslog copy"
		if s.cfg.Audit.Syslog == "" {
			msg = "no audit checkpoint key (audit.checkpoint_key) and no syslog copy (audit.syslog): nothing protects the end of the audit trail"
		}
		s.log.Warn(msg + "; make a key with shoji audit keygen --out /etc/shoji/audit-checkpoint.key (docs/audit.md)")
		return nil, nil
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("config: audit.checkpoint_key: %w", err)
	}
	data, err := filepath.EvalSymlinks(s.cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if auditKeyWithin(resolved, data) {
		return nil, fmt.Errorf("config: audit.checkpoint_key %s (%s) is inside the data directory %s: keep the key where "+
			"whoever can write the data directory cannot read it (for example /etc/shoji/audit-checkpoint.key)", path, resolved, s.cfg.Data)
	}
	key, err := audit.LoadSigningKey(path)
	if err != nil {
		return nil, fmt.Errorf("config: audit.checkpoint_key: %w", err)
	}
	s.log.Info("audit checkpoints are signed", "key", path, "key_id", key.Public().ID(),
		"every", s.cfg.Audit.CheckpointEvery, "interval", time.Duration(s.cfg.Audit.CheckpointInterval).String())
	return key, nil
}

// auditKeyWithin reports whether path is dir or below it; both absolute
// and clean.
func auditKeyWithin(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
