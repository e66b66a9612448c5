package files

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// FileStore holds files' ciphertext. An upload is written under a
// temporary name and becomes readable only by Commit, so a reader never
// sees a half-written file. The local filesystem implements it
// (FSStore); an object store can later.
type FileStore interface {
	// Create starts an empty upload.
	Create(id string) error
	// Append writes r to the upload at offset, the length durably written
	// before (bytes after it from a torn write are dropped), and makes it
	// durable. It returns the new durable length, also on error.
	Append(id string, offset int64, r io.Reader) (int64, error)
	// Commit makes a whole upload readable, atomically.
	Commit(id string) error
	// Open reads a committed file.
	Open(id string) (Blob, error)
	// Remove forgets an upload or a file; a missing one is no error.
	Remove(id string) error
}

// Lister is a FileStore that can list the ids it holds, so content whose
// record went (its account or sender device was deleted) is found and
// removed.
type Lister interface {
	List() ([]string, error)
}

// Blob is a committed file's content.
type Blob interface {
	io.ReadSeekCloser
}

// FSStore keeps files in one directory: "<id>.part" while uploading,
// "<id>" once committed.
type FSStore struct {
	Dir string
}

// NewFSStore makes dir if needed.
func NewFSStore(dir string) (*FSStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	return &FSStore{Dir: dir}, nil
}

// checkID keeps ids to names the service makes, so no path escapes Dir.
func checkID(id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return fmt.Errorf("file store: bad id %q", id)
	}
	return nil
}

func (s *FSStore) part(id string) string  { return filepath.Join(s.Dir, id+".part") }
func (s *FSStore) final(id string) string { return filepath.Join(s.Dir, id) }

func (s *FSStore) Create(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	f, err := os.OpenFile(s.part(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("file store: create: %w", err)
	}
	return f.Close()
}

func (s *FSStore) Append(id string, offset int64, r io.Reader) (int64, error) {
	if err := checkID(id); err != nil {
		return offset, err
	}
	f, err := os.OpenFile(s.part(id), os.O_WRONLY, 0)
	if err != nil {
		return offset, fmt.Errorf("file store: append: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return offset, fmt.Errorf("file store: append: %w", err)
	}
	if st.Size() < offset {
		// Truncate would fill the gap with zeros.
		return offset, fmt.Errorf("file store: append: %s holds %d bytes, less than the recorded %d", id, st.Size(), offset)
	}
	// A crash after a write but before the offset was recorded leaves
	// bytes the uploader was never told about: drop them.
	if err := f.Truncate(offset); err != nil {
		return offset, fmt.Errorf("file store: append: %w", err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset, fmt.Errorf("file store: append: %w", err)
	}
	n, cerr := io.Copy(f, r)
	if err := f.Sync(); err != nil {
		// Nothing written since the last sync is known to be durable.
		return offset, fmt.Errorf("file store: sync: %w", err)
	}
	if cerr != nil {
		return offset + n, fmt.Errorf("file store: append: %w", cerr)
	}
	return offset + n, nil
}

func (s *FSStore) Commit(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := os.Rename(s.part(id), s.final(id)); err != nil {
		return fmt.Errorf("file store: commit: %w", err)
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("file store: commit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file store: commit: %w", err)
	}
	return nil
}

func (s *FSStore) Open(id string) (Blob, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(s.final(id))
	if err != nil {
		return nil, fmt.Errorf("file store: open: %w", err)
	}
	return f, nil
}

func (s *FSStore) Remove(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	var errs []error
	for _, p := range []string{s.part(id), s.final(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("file store: remove: %w", errors.Join(errs...))
	}
	return nil
}

func (s *FSStore) List() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("file store: list: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		id := strings.TrimSuffix(e.Name(), ".part")
		if checkID(id) == nil && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
