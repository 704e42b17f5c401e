package tempo

import (
	"testing"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil"
)

// The shared fixture (see testutil.TraceQLFixture) under short local names.
const (
	base = testutil.Base
	ms   = testutil.Ms
)

var (
	fixture = testutil.TraceQLFixture
)

func openStore(t *testing.T, b *span.Batch) *store.DB { return storetest.OpenStore(t, b) }
