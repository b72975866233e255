// Package protocol is the viewer protocol of docs/protocol.md in Go: its
// version, the type of every text message either side sends, and one typed
// payload per message the server sends. Every message the broker writes to
// a viewer is built from these types, and a test keeps this package, the
// viewer's JavaScript (web/static) and docs/protocol.md in step.
package protocol

import (
	"encoding/json"
	"fmt"

	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/isolation"
)

// Version is the version of docs/protocol.md this server speaks. A viewer
// names its own in hello; the server names Version in ready.
const Version = 3

// MinVersion is the oldest viewer version the server still serves: a
// viewer of version 1 gets every frame as a full frame (a bare JPEG), as
// before partial frames (PartialFramesVersion) existed.
const MinVersion = 1

// Type is the "type" field of a text message.
type Type string

// The messages the server sends to a viewer (docs/protocol.md, "Server →
// viewer").
const (
	TypeReady         Type = "ready"
	TypeState         Type = "state"
	TypeDialog        Type = "dialog" // also a viewer's answer to a dialog
	TypeDialogClosed  Type = "dialogClosed"
	TypeCaret         Type = "caret"
	TypeStatus        Type = "status"
	TypeError         Type = "error"
	TypeAccessRequest Type = "accessRequest"
	TypeSiteRequest   Type = "siteRequest"
	TypeClipboard     Type = "clipboard"
	TypeTransfer      Type = "transfer"
	TypeFileChooser   Type = "fileChooser"
)

// The messages a viewer sends to the server (docs/protocol.md, "Viewer →
// server"), besides TypeDialog.
const (
	TypeHello    Type = "hello"
	TypeResize   Type = "resize"
	TypeMouse    Type = "mouse"
	TypeWheel    Type = "wheel"
	TypeKey      Type = "key"
	TypeIME      Type = "ime"
	TypeNav      Type = "nav"
	TypeTab      Type = "tab"
	TypeRestart  Type = "restart"
	TypeActivity Type = "activity"
	TypeCopy     Type = "copy"
	TypePaste    Type = "paste"
	TypePrint    Type = "print"
	TypeDrop     Type = "drop"
	TypeKeyFrame Type = "keyframe"
)

// ServerTypes lists every message type the server sends, in the order of
// docs/protocol.md.
var ServerTypes = []Type{
	TypeReady, TypeState, TypeDialog, TypeDialogClosed, TypeCaret, TypeStatus, TypeError,
	TypeAccessRequest, TypeSiteRequest, TypeClipboard, TypeTransfer, TypeFileChooser,
}

// ViewerTypes lists every message type a viewer may send, in the order of
// docs/protocol.md.
var ViewerTypes = []Type{
	TypeHello, TypeResize, TypeMouse, TypeWheel, TypeKey, TypeIME, TypeNav, TypeTab, TypeDialog,
	TypeRestart, TypeActivity, TypeCopy, TypePaste, TypePrint, TypeDrop, TypeKeyFrame,
}

// Message is a text message from the server to a viewer: a payload struct
// of this package whose fields become the JSON object's fields beside
// "type".
type Message interface {
	MessageType() Type
}

// Encode returns m as the JSON object the viewer receives: "type" first,
// then the payload's fields. The payload is marshalled once and the type
// is written in front of it; a payload must marshal to a JSON object
// without a "type" field of its own.
func Encode(m Message) ([]byte, error) {
	t := m.MessageType()
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", t, err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("encode %s message: payload %T is not a JSON object", t, m)
	}
	name, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", t, err)
	}
	out := make([]byte, 0, len(body)+len(name)+9)
	out = append(out, `{"type":`...)
	out = append(out, name...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// Ready says the session is live; it is the first message of a stream.
type Ready struct {
	Version        int    `json:"version"`
	User           string `json:"user"`
	Role           string `json:"role"`
	SessionID      string `json:"sessionId"`
	Profile        string `json:"profile"`
	IdleTimeoutSec int    `json:"idleTimeoutSec"`
	MaxLifetimeSec int    `json:"maxLifetimeSec"`
	Notice         string `json:"notice"`
}

// State is the toolbar's contents, with whether the active host is a
// trusted medical site.
type State struct {
	isolation.State
	Trusted bool `json:"trusted"`
}

// Dialog is a JavaScript dialog of the remote page, to show and answer.
type Dialog struct {
	isolation.Dialog
}

// DialogClosed says a dialog went away (answered elsewhere, or the page
// moved on).
type DialogClosed struct {
	ID string `json:"id"`
}

// Caret is where the remote caret is, to place the IME candidate window.
type Caret struct {
	isolation.Caret
}

// Status is the session's state; Reason says why it ended.
type Status struct {
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error says a request failed; the session carries on.
type Error struct {
	Message string `json:"message"`
}

// AccessRequest says the clinician pressed "request access" on a block
// page: the viewer asks for a reason.
type AccessRequest struct {
	Host string `json:"host"`
	URL  string `json:"url"`
}

// SiteRequest says an approver decided a site request of this clinician.
type SiteRequest struct {
	ID      string `json:"id"`
	Host    string `json:"host"`
	State   string `json:"state"`
	Comment string `json:"comment"`
}

// Clipboard is text the clinician copied in the remote page, allowed by
// policy, for the terminal's clipboard.
type Clipboard struct {
	Text string `json:"text"`
}

// Transfer is a ledger entry of this clinician's download, print or upload
// that changed.
type Transfer struct {
	transfer.Transfer
}

// FileChooser is a file chooser a page opened (or files dropped on the
// remote screen), allowed or refused.
type FileChooser struct {
	transfer.Chooser
}

// MessageType implements Message.
func (Ready) MessageType() Type { return TypeReady }

// MessageType implements Message.
func (State) MessageType() Type { return TypeState }

// MessageType implements Message.
func (Dialog) MessageType() Type { return TypeDialog }

// MessageType implements Message.
func (DialogClosed) MessageType() Type { return TypeDialogClosed }

// MessageType implements Message.
func (Caret) MessageType() Type { return TypeCaret }

// MessageType implements Message.
func (Status) MessageType() Type { return TypeStatus }

// MessageType implements Message.
func (Error) MessageType() Type { return TypeError }

// MessageType implements Message.
func (AccessRequest) MessageType() Type { return TypeAccessRequest }

// MessageType implements Message.
func (SiteRequest) MessageType() Type { return TypeSiteRequest }

// MessageType implements Message.
func (Clipboard) MessageType() Type { return TypeClipboard }

// MessageType implements Message.
func (Transfer) MessageType() Type { return TypeTransfer }

// MessageType implements Message.
func (FileChooser) MessageType() Type { return TypeFileChooser }
