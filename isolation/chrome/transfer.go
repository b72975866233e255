package chrome

import (
	"context"
	"errors"
)

// errNotYet marks the transfer methods that are being built.
var errNotYet = errors.New("not implemented yet")

func (b *browser) CancelDownload(ctx context.Context, id string) error { return errNotYet }
func (b *browser) SetFiles(ctx context.Context, chooser string, paths []string) error {
	return errNotYet
}
func (b *browser) Copy(ctx context.Context) (string, error) { return "", errNotYet }
func (b *browser) Print(ctx context.Context) error          { return errNotYet }
