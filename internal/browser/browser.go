// Package browser starts headless Chromium for the portal's browser tests
// (chromedp): Debian's chromium package, which .ci/run installs, with a
// fresh profile and every background service off (the machine has no
// network, and nothing may leave loopback). Without the binary a test
// skips, or fails under CI=true (internal/ciskip).
package browser

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"deskd/internal/ciskip"
)

// Path finds the Chromium binary ("" when there is none).
func Path() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for tb and returns a chromedp context for
// its first tab; everything stops when tb ends.
func New(tb testing.TB) context.Context {
	tb.Helper()
	path := Path()
	if path == "" {
		ciskip.SkipOrFail(tb, "chromium not installed", "apt-get install chromium (.ci/run does)")
		return nil
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancelC(); cancelA() })
	// The first call starts the browser, on a context without a timeout
	// (a timeout there would stop the browser itself).
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	tb.Cleanup(cancelT)
	return tctx
}
