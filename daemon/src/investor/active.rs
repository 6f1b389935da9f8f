//! One active process per investor: a process runs investor N only while
//! it holds `DATA/.state/investor-N.lock` (see [`crate::fsutil::try_lock`]).
//! A second process given the same investor on the same state folder (one
//! machine, or a shared mount) stands by, and takes over within a poll
//! period of the active one's death, from the state it left: NAV_Change
//! continues.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::status::StatusBoard;
use crate::fsutil::{LockAttempt, try_lock};
use crate::market::InvestorId;

/// How often a standby tries the lock.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// Takes the lock of `investor`, standing by (and saying so on `status`)
/// while another process holds it. `None`: `stop` was cancelled, or
/// `wanted` turned false (the plugin was removed), first.
pub async fn take(
    data: &Path,
    investor: InvestorId,
    status: &StatusBoard,
    stop: &CancellationToken,
    wanted: impl Fn() -> bool,
) -> std::io::Result<Option<File>> {
    let path = crate::layout::investor_lock_path(data, investor);
    let mut standing_by = false;
    loop {
        match try_lock(&path)? {
            LockAttempt::Taken(lock) => {
                if standing_by {
                    status.standing_by(investor, None);
                    tracing::info!(investor = %investor, "the active process of investor {investor} is gone: taking over");
                }
                return Ok(Some(lock));
            }
            LockAttempt::Held(holder) => {
                if !standing_by {
                    standing_by = true;
                    status.standing_by(investor, Some(holder.clone()));
                    tracing::warn!(
                        investor = %investor,
                        "investor {investor} is active in another process ({holder}, {}): standing by to take over",
                        path.display()
                    );
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(None),
            () = tokio::time::sleep(STANDBY_POLL) => {}
        }
        if !wanted() {
            return Ok(None);
        }
    }
}
