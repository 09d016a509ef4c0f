package etcd

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	var muted atomic.Bool
	lg := newZapLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), zapcore.WarnLevel, &muted)
	lg.Info("dropped: below the level")
	lg.With(zap.String("member", "m1")).Warn("kept", zap.Int("n", 3))
	muted.Store(true)
	lg.Error("dropped: muted")
	got := buf.String()
	if strings.Contains(got, "dropped") || !strings.Contains(got, "level=WARN msg=kept member=m1 n=3") {
		t.Errorf("logged %q", got)
	}
	if newZapLogger(nil, zapcore.DebugLevel, &muted).Core().Enabled(zapcore.FatalLevel) {
		t.Error("nil slog logger does not discard")
	}
}
