package store

import "github.com/clew-dev/clew/internal/storeconfig"

// Config holds the user-facing settings of one tenant's store; it is
// defined in internal/storeconfig (see there for each field).
type Config = storeconfig.Config

// DefaultConfig returns the settings clew runs with when none are given.
func DefaultConfig() Config { return storeconfig.DefaultConfig() }
