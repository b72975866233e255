package cli

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadPassword(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "secret\n", want: "secret"},
		{in: "secret\r\nnext line\n", want: "secret"},
		{in: "no newline", want: "no newline"},
		{in: "パスワード\n", want: "パスワード"},
		{in: "", err: "first line is empty"},
		{in: "\nsecret\n", err: "first line is empty"},
	} {
		got, err := ReadPassword(strings.NewReader(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ReadPassword(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ReadPassword(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := ReadPassword(iotest.ErrReader(errors.New("disk gone"))); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("ReadPassword of a failing reader = %v, want its error", err)
	}
}
