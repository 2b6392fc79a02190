package ops

import (
	"context"
	"strings"

	"smp"
	"smp/auth"
)

// Regions is replication's state in this region (the target's):
// its paths, paused and resumed with their audit entries (sqlstore.DB).
type Regions interface {
	smp.Transactor
	FindReplicationPaths(ctx context.Context) ([]smp.ReplicationPath, error)
	FindReplicationPath(ctx context.Context, path string) (smp.ReplicationPath, error)
	FindReplicationHops(ctx context.Context) ([]smp.ReplicationHop, error)
	ReplicationGroupCheckpoints(ctx context.Context, path, group string) ([]smp.ReplicationGroupCheckpoint, error)
}

// ReplicationStatus is replication into this region: its paths, the pairs
// it reaches through other regions (heartbeats mirrored onward) and the
// source consumer groups' checkpoints with their translation here.
type ReplicationStatus struct {
	Paths       []smp.ReplicationPath
	Hops        []smp.ReplicationHop
	Checkpoints []smp.ReplicationGroupCheckpoint
}

// ReplicationStatus returns replication's state in this region (runbook
// INC-012's status). EFORBIDDEN; EUNAVAILABLE where replication's state is
// not served.
func (s *Service) ReplicationStatus(ctx context.Context, p smp.Principal) (ReplicationStatus, error) {
	var out ReplicationStatus
	paths, err := s.ReplicationPaths(ctx, p)
	if err != nil {
		return out, err
	}
	out.Paths = paths
	if out.Hops, err = s.cfg.Regions.FindReplicationHops(ctx); err != nil {
		return out, err
	}
	out.Checkpoints = []smp.ReplicationGroupCheckpoint{}
	for _, rp := range paths {
		cps, err := s.cfg.Regions.ReplicationGroupCheckpoints(ctx, rp.Path, "")
		if err != nil {
			return out, err
		}
		out.Checkpoints = append(out.Checkpoints, cps...)
	}
	return out, nil
}

// ReplicationPaths lists the replication paths into this region with
// their state (runbook INC-012's status). EFORBIDDEN; EUNAVAILABLE where
// replication's state is not served.
func (s *Service) ReplicationPaths(ctx context.Context, p smp.Principal) ([]smp.ReplicationPath, error) {
	if err := auth.Check(p, "regions.view"); err != nil {
		return nil, err
	}
	if s.cfg.Regions == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "replication is not served in this process")
	}
	return s.cfg.Regions.FindReplicationPaths(ctx)
}

// SetReplicationPaused pauses (paused true) or resumes a replication path
// (smp ctl regions pause|resume --path asia-to-china; runbook INC-012
// scenario 3: pause, migrate the target, resume), audited in the same
// transaction (replication.pause, replication.resume). The agents running
// the path stop or start within a second. EFORBIDDEN; EINVALID without a
// reason; ENOTFOUND for a path never declared (no agent ever ran it here);
// EUNAVAILABLE where replication's state is not served.
func (s *Service) SetReplicationPaused(ctx context.Context, p smp.Principal, path string, paused bool, reason string) (smp.ReplicationPath, error) {
	if err := auth.Check(p, "regions.pause"); err != nil {
		return smp.ReplicationPath{}, err
	}
	if err := needReason(reason, "a reason is required to pause or resume replication"); err != nil {
		return smp.ReplicationPath{}, err
	}
	if s.cfg.Regions == nil {
		return smp.ReplicationPath{}, smp.Errorf(smp.EUNAVAILABLE, "replication is not served in this process")
	}
	reason = strings.TrimSpace(reason)
	err := s.cfg.Regions.InTx(ctx, func(tx smp.Tx) error {
		before, err := tx.SetReplicationPathState(ctx, path, paused, reason, 0, p.Name)
		if err != nil {
			return err
		}
		action, state, was := "replication.resume", "running", "running"
		if paused {
			action, state = "replication.pause", "paused"
		}
		if before.Paused {
			was = "paused"
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: s.cfg.Now(), Actor: p.Name, Role: p.Role, Action: action, Target: path, Before: was, After: state, Reason: reason})
	})
	if err != nil {
		return smp.ReplicationPath{}, err
	}
	return s.cfg.Regions.FindReplicationPath(ctx, path)
}
