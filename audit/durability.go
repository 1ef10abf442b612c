package audit

import (
	"context"
	"fmt"
	"time"
)

// Durability: every Write appends its line under w.mu, then (fsync
// always) waits until an fsync covering its sequence number has finished.
// The first waiter to find no fsync in flight becomes the leader and runs
// it for everyone written so far (group commit); the others wait for it or
// for the next one. With fsync interval a background loop is the only
// leader and Write does not wait.

// durable waits, per the fsync policy, until record seq is on disk.
func (w *Writer) durable(ctx context.Context, seq uint64) error {
	if w.cfg.Fsync != FsyncAlways {
		return nil
	}
	for {
		w.smu.Lock()
		if w.synced >= seq {
			w.smu.Unlock()
			return nil
		}
		if w.syncErr != nil {
			err := w.syncErr
			w.smu.Unlock()
			return err
		}
		if !w.syncing {
			w.syncing = true
			w.smu.Unlock()
			w.doSync()
			continue
		}
		wake := w.wake
		w.smu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("audit: waiting for fsync: %w", ctx.Err())
		}
	}
}

// doSync runs one fsync as leader (w.syncing set by the caller) and
// publishes its result.
func (w *Writer) doSync() {
	w.fileMu.RLock()
	target := w.written.Load()
	err := w.sink.Sync()
	w.fileMu.RUnlock()
	w.smu.Lock()
	w.syncing = false
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// nothing written since the last good fsync can be trusted.
		if w.syncErr == nil {
			w.syncErr = fmt.Errorf("%w: fsync: %w", ErrSinkFailed, err)
		}
	} else if target > w.synced {
		w.synced = target
	}
	close(w.wake)
	w.wake = make(chan struct{})
	w.smu.Unlock()
}

// markSynced records that everything up to seq is durable (after the
// rotation's fsync of the old file).
func (w *Writer) markSynced(seq uint64) {
	w.smu.Lock()
	if seq > w.synced {
		w.synced = seq
		close(w.wake)
		w.wake = make(chan struct{})
	}
	w.smu.Unlock()
}

// syncFailed returns the sticky fsync error, if any.
func (w *Writer) syncFailed() error {
	w.smu.Lock()
	defer w.smu.Unlock()
	return w.syncErr
}

// syncLoop is the fsync interval leader.
func (w *Writer) syncLoop(ctx context.Context) {
	defer w.wg.Done()
	t := time.NewTicker(w.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.smu.Lock()
		if w.syncing || w.syncErr != nil || w.written.Load() <= w.synced {
			w.smu.Unlock()
			continue
		}
		w.syncing = true
		w.smu.Unlock()
		w.doSync()
		if err := w.syncFailed(); err != nil {
			w.log.Error("audit log fsync failed; records may be lost", zapErr(err))
			return
		}
	}
}
