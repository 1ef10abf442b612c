// Package protocol follows one session's PostgreSQL v3 request/reply
// protocol so that every message the server sends can be tied to the
// request it answers, and to the prepared statement or portal exactly as
// the server used it when it answered.
//
// The Tracker is pure: it does no I/O and holds its lock only while it
// updates its own state. The proxy calls Send for every message it
// forwards to the server (the client's and its own, in the order they go
// out) and Receive for every message the server sends (in the order they
// arrive).
//
// Three rules make a mismatch between the tracker and the server
// impossible rather than unlikely (docs/security.md):
//
//   - Replies are matched to requests through a FIFO; the server answers
//     requests in order, and after an error in an extended-protocol batch
//     it skips every message up to the batch's Sync, simple queries
//     included. The tracker models exactly that.
//   - Names are resolved when the reply arrives, against the state the
//     server has confirmed so far (ParseComplete, BindComplete,
//     CloseComplete, command tags), never against what the client sent:
//     a Parse that fails leaves the old statement in place, as it does on
//     the server.
//   - Statements and portals are immutable identities. A new Parse or Bind
//     with the same name makes a new one; a Describe answered later
//     describes the object that existed when the server answered it.
package protocol
