package client

import "testing"

func TestWrongPasswordErrorPlurals(t *testing.T) {
	for _, c := range []struct {
		e    WrongPasswordError
		want string
	}{
		{WrongPasswordError{FreeLeft: 1, Remaining: 8}, "wrong password (1 attempt left before delays, 8 before lock-out)"},
		{WrongPasswordError{FreeLeft: 2, Remaining: 9}, "wrong password (2 attempts left before delays, 9 before lock-out)"},
		{WrongPasswordError{Remaining: 1}, "wrong password (1 attempt left before lock-out; each further attempt waits longer)"},
		{WrongPasswordError{Remaining: 3}, "wrong password (3 attempts left before lock-out; each further attempt waits longer)"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}
