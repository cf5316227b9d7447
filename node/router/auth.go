package router

import (
	"bufio"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// credentials checks a decoded "user:password" and returns the user.
type credentials interface {
	check(userPass string) (string, bool)
}

// inlineCreds is basicauth's "user:pass" (or "user:" for an empty password).
type inlineCreds string

func (c inlineCreds) check(userPass string) (string, bool) {
	if subtle.ConstantTimeCompare([]byte(userPass), []byte(c)) != 1 {
		return "", false
	}
	user, _, _ := strings.Cut(userPass, ":")
	return user, true
}

// htpasswdEntry is one user of an htpasswd file: a {SHA} digest or a plain
// password.
type htpasswdEntry struct {
	sha   []byte
	plain string
}

// htpasswd is loaded once at start-up (uWSGI re-reads the file on every
// request; a changed file needs a reload here).
type htpasswd map[string]htpasswdEntry

func (h htpasswd) check(userPass string) (string, bool) {
	user, pass, ok := strings.Cut(userPass, ":")
	e, found := h[user]
	if !ok || !found {
		return "", false
	}
	if e.sha != nil {
		sum := sha1.Sum([]byte(pass))
		return user, subtle.ConstantTimeCompare(sum[:], e.sha) == 1
	}
	return user, subtle.ConstantTimeCompare([]byte(pass), []byte(e.plain)) == 1
}

// loadHtpasswd reads an htpasswd file with {SHA} or plain entries. crypt,
// MD5 ($apr1$) and bcrypt entries are refused by name rather than silently
// never matching.
func loadHtpasswd(file string) (htpasswd, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file: %w", err)
	}
	defer f.Close()
	h := htpasswd{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd file %s line %d: expected user:password", file, n)
		}
		e, err := parseHtpasswdHash(hash)
		if err != nil {
			return nil, fmt.Errorf("htpasswd file %s line %d (user %q): %w", file, n, user, err)
		}
		h[user] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", file, err)
	}
	return h, nil
}

func parseHtpasswdHash(hash string) (htpasswdEntry, error) {
	if b64, ok := strings.CutPrefix(hash, "{SHA}"); ok {
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sum) != sha1.Size {
			return htpasswdEntry{}, errors.New("malformed {SHA} hash")
		}
		return htpasswdEntry{sha: sum}, nil
	}
	if strings.HasPrefix(hash, "$") {
		scheme, _, _ := strings.Cut(hash[1:], "$")
		return htpasswdEntry{}, fmt.Errorf("hash scheme $%s$ is not supported: use {SHA} (htpasswd -s) or plain passwords", scheme)
	}
	if looksLikeDESCrypt(hash) {
		return htpasswdEntry{}, errors.New("looks like a DES crypt hash, which is not supported: use {SHA} (htpasswd -s)")
	}
	return htpasswdEntry{plain: hash}, nil
}

// looksLikeDESCrypt spots the 13-character crypt(3) form; taking it as a
// plain password would make the hash itself the password.
func looksLikeDESCrypt(s string) bool {
	if len(s) != 13 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// buildBasicAuth: "basicauth:<realm>,<user:pass | user: | htpasswd file>".
// Success sets REMOTE_USER and goes on; failure sends 401 with
// WWW-Authenticate, except that basicauth-next lets wrong credentials fall
// through to the next rule (a request without credentials still gets 401,
// as in uWSGI).
func buildBasicAuth(next bool) func(*parser, string) (actionFunc, error) {
	return func(_ *parser, args string) (actionFunc, error) {
		realm, spec, ok := strings.Cut(args, ",")
		if !ok || spec == "" {
			return nil, errors.New("expected <realm>,<user:password|htpasswd file>")
		}
		var creds credentials = inlineCreds(spec)
		if !strings.Contains(spec, ":") {
			h, err := loadHtpasswd(spec)
			if err != nil {
				return nil, err
			}
			creds = h
		}
		challenge := []string{`Basic realm="` + realm + `"`}
		return func(st *state) verdict {
			if st.r.Vars.Value("REMOTE_USER") != "" {
				return vNext
			}
			if enc, ok := strings.CutPrefix(st.r.Vars.Value("HTTP_AUTHORIZATION"), "Basic "); ok && enc != "" {
				if dec, err := base64.StdEncoding.DecodeString(enc); err == nil {
					if user, ok := creds.check(string(dec)); ok {
						st.r.Vars.Set("REMOTE_USER", user)
						return vNext
					}
					if next {
						return vNext
					}
				}
			}
			h := st.rw.Header()
			h["Www-Authenticate"] = challenge
			h.Set("Content-Type", "text/plain")
			st.rw.WriteHeader(http.StatusUnauthorized)
			_, _ = st.rw.Write([]byte("Unauthorized"))
			return vBreak
		}, nil
	}
}
