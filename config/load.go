package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/spf13/viper"
)

// Problem is one thing wrong with a configuration, tied to its key
// ("imap.port", "customers[1].contacts[0].email").
type Problem struct {
	Key     string
	Message string
}

// String is "key: message".
func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// LoadError is returned by Load when the configuration has problems; the
// caller (startup, SIGHUP reload) prints it and keeps what it had.
type LoadError struct {
	Path     string // the file, "" when none was given
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load builds the configuration from the embedded defaults, the YAML file at
// path ("" for none), the environment (DESKD_<SECTION>_<KEY>) and the secret
// files, in that order, and validates it. A file that cannot be read or
// parsed gives a plain error; anything else wrong (unknown keys, values of
// the wrong type, failed validation, unreadable secret files) gives a
// *LoadError listing every problem.
func Load(path string) (*Config, error) {
	c, problems, err := load(path)
	if err != nil {
		return nil, err
	}
	problems = append(problems, c.readSecrets()...)

	// A key that already has a loading problem gets no second one from
	// Validate (a port that did not parse is also "out of range"), nor does
	// a secret whose file could not be read.
	seen := map[string]bool{}
	for _, p := range problems {
		seen[p.Key] = true
	}
	for _, p := range c.Validate() {
		if !seen[p.Key] && !seen[p.Key+"_file"] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, &LoadError{Path: path, Problems: problems}
	}
	return c, nil
}

// LoadUnvalidated is Load without Validate, for tools that need a few values
// (the CLI finding the store and the admin socket) from a file that may be
// incomplete. Unknown keys and values of the wrong type are still a
// *LoadError. Secret files are read when they can be; one that cannot (the
// CLI need not be allowed to) leaves its secret empty, without a problem.
func LoadUnvalidated(path string) (*Config, error) {
	c, problems, err := load(path)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, &LoadError{Path: path, Problems: problems}
	}
	_ = c.readSecrets()
	return c, nil
}

// load runs the defaults, file and environment layers and normalises; the
// problems are unknown keys and values that did not decode.
func load(path string) (*Config, []Problem, error) {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// AutomaticEnv alone does not make Unmarshal see a key that is neither
	// in the file nor defaulted, so every key is bound and defaulted.
	keys, values := envKeys()
	for i, key := range keys {
		v.SetDefault(key, values[i])
		if err := v.BindEnv(key, EnvName(key)); err != nil {
			return nil, nil, fmt.Errorf("bind %s: %w", key, err)
		}
	}

	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml") // whatever the file is called
		if err := v.ReadInConfig(); err != nil {
			return nil, nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}

	problems := unknownKeys("", reflect.TypeFor[Config](), v.AllSettings())
	var c Config
	if err := v.Unmarshal(&c, viper.DecodeHook(decodeHook())); err != nil {
		problems = append(problems, decodeProblems(err)...)
	}
	c.normalize()
	return &c, problems, nil
}

// readSecrets fills each secret from its *_file key. The environment is a
// higher layer than the file: DESKD_IMAP_PASSWORD wins over the file's
// password_file and DESKD_IMAP_PASSWORD_FILE over the file's password. Within
// one layer, setting both is a problem.
func (c *Config) readSecrets() []Problem {
	var problems []Problem
	for _, s := range []struct {
		key   string
		value *Secret
		file  *string
	}{
		{"imap.password", &c.IMAP.Password, &c.IMAP.PasswordFile},
		{"smtp.password", &c.SMTP.Password, &c.SMTP.PasswordFile},
		{"support.hmac_key", &c.Support.HMACKey, &c.Support.HMACKeyFile},
		{"oauth2.client_secret", &c.OAuth2.ClientSecret, &c.OAuth2.ClientSecretFile},
		{"oauth2.refresh_token", &c.OAuth2.RefreshToken, &c.OAuth2.RefreshTokenFile},
	} {
		fileKey := s.key + "_file"
		valueEnv, fileEnv := envSet(EnvName(s.key)), envSet(EnvName(fileKey))
		switch {
		case valueEnv && fileEnv:
			problems = append(problems, Problem{fileKey, fmt.Sprintf("both %s and %s are set; set one", EnvName(s.key), EnvName(fileKey))})
			continue
		case valueEnv:
			*s.file = "" // the file's *_file is overridden
			continue
		case fileEnv:
			// the file's plain value is overridden
		case *s.file == "":
			continue
		case *s.value != "":
			problems = append(problems, Problem{fileKey, fmt.Sprintf("set either %s or %s, not both", s.key, fileKey)})
			continue
		}
		b, err := os.ReadFile(*s.file)
		if err != nil {
			problems = append(problems, Problem{fileKey, fmt.Sprintf("cannot read: %v", err)})
			continue
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			problems = append(problems, Problem{fileKey, fmt.Sprintf("%s is empty", *s.file)})
			continue
		}
		*s.value = Secret(secret)
	}
	return problems
}

// envSet matches viper's reading: an empty variable counts as unset.
func envSet(name string) bool {
	return os.Getenv(name) != ""
}
