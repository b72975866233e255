package stream

import (
	"errors"
	"fmt"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/isolation"
)

// Limits on inbound messages.
const (
	maxMessageBytes = 64 << 10
	maxURLBytes     = 8 << 10
	maxIMERunes     = 2000
	maxDialogText   = 10000
	maxIDBytes      = 128
	lineHeightPx    = 40
)

// protocolError is a message the viewer sent that breaks the protocol. It
// closes the connection with Code and a reason naming what was wrong.
type protocolError struct {
	Code   int
	Reason string
}

func (e *protocolError) Error() string { return e.Reason }

func badData(format string, args ...any) error {
	return &protocolError{Code: websocket.CloseInvalidFramePayloadData, Reason: fmt.Sprintf(format, args...)}
}

// badInput is a viewer's input event that isolation's Validate refused:
// bad data, with the reason naming the field.
func badInput(err error) error {
	return badData("%v", err)
}

func badPolicy(format string, args ...any) error {
	return &protocolError{Code: websocket.ClosePolicyViolation, Reason: fmt.Sprintf(format, args...)}
}

// closeCode returns the WebSocket close code and reason for err.
func closeCode(err error) (int, string) {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.Code, pe.Reason
	}
	return websocket.CloseInternalServerErr, "internal error"
}

// checkPoint refuses a point outside the viewport vp; kind names the
// message in the reason.
func checkPoint(kind string, x, y float64, vp isolation.Viewport) error {
	if x < 0 || y < 0 || x > float64(vp.Width) || y > float64(vp.Height) || x != x || y != y {
		return badData("%s coordinates out of range: (%g, %g) outside %dx%d", kind, x, y, vp.Width, vp.Height)
	}
	return nil
}
