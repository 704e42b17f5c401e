package auth

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUsage is wrapped by TokenMain's errors for a wrong command line.
var ErrUsage = errors.New("usage")

const tokenUsage = `Usage:
  clew token new    print a new random token and the sha256 line for the configuration
  clew token hash   read a token from stdin and print its sha256
`

// TokenMain runs `clew token` with args (after "token"):
//
//	new   prints a new random token (NewToken) and, under it, the sha256
//	      line of its entry in the auth: tokens: list of the configuration
//	hash  reads a token from stdin (surrounding white space, such as the
//	      newline of echo, is dropped) and prints its hex SHA-256
//
// The token itself is printed only by new, once; clew keeps only its hash.
func TokenMain(args []string, stdout io.Writer, stdin io.Reader) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: clew token new | clew token hash\n%s", ErrUsage, tokenUsage)
	}
	switch args[0] {
	case "new":
		tok, err := NewToken()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n# the entry under auth: tokens: (give the token above to the client; it is not stored)\n- name: NAME\n  sha256: %s\n  tenant: TENANT\n  rights: [write]\n", tok, HashToken(tok))
		return err
	case "hash":
		b, err := io.ReadAll(io.LimitReader(stdin, MaxAuthorizationLength+1))
		if err != nil {
			return fmt.Errorf("reading the token from stdin: %w", err)
		}
		if len(b) > MaxAuthorizationLength {
			return fmt.Errorf("the token on stdin is over %d bytes", MaxAuthorizationLength)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return errors.New("no token on stdin (echo -n \"$TOKEN\" | clew token hash)")
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return errors.New("the token on stdin contains white space; give one token")
		}
		_, err = fmt.Fprintf(stdout, "sha256: %s\n", HashToken(tok))
		return err
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, tokenUsage)
		return err
	}
	return fmt.Errorf("%w: unknown token command %q\n%s", ErrUsage, args[0], tokenUsage)
}
