//go:build !unix

package broker

// tightenDataDir changes nothing where file modes are not Unix's.
func tightenDataDir(string) ([]string, error) { return nil, nil }
