//! Moving the runtime's own line counters (OTP 27+ `code:get_coverage(cover_id_line, M)`)
//! into a slot as deltas.
//!
//! The VM's counters of a module only grow while its code is loaded, and LiveCov never resets
//! them (a reset between a read and the next bump would lose that bump, as `cover`'s
//! get-then-reset does). Instead each slot fed by them keeps the absolute values seen at the
//! last harvest; a harvest adds `now - then` per site to the slot's own counters, where
//! reads, takes and resets work as for NIF bumps. Harvests of one slot are serialised by the
//! caller (one harvester process per VM), so a value below the baseline means somebody else
//! reset the runtime's counters (`code:reset_coverage/1`, another `cover`): the whole value is
//! then new, and the harvest says so.

use crate::error::Error;

/// The absolute counts last seen for one slot, one per site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    seen: Vec<u64>,
}

/// What one harvest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Harvest {
    /// Bumps moved into the slot.
    pub added: u64,
    /// Sites whose runtime counter went down since the last harvest (reset by somebody else).
    pub went_back: u64,
}

impl Baseline {
    /// A baseline of `nsites` zeros: freshly loaded code, whose counters start at zero.
    pub fn new(nsites: usize) -> Baseline {
        Baseline {
            seen: vec![0; nsites],
        }
    }

    /// The deltas since the last harvest, from the runtime's `{cover_id, count}` pairs (ids
    /// from 1, one per site; an id may appear more than once, as the compiler can duplicate
    /// an `executable_line` instruction: those entries are summed). Ids outside `1..=nsites`
    /// are an error (the code is not the build this slot was made for) and change nothing.
    pub fn apply(
        &mut self,
        pairs: &[(u64, u64)],
        slot: usize,
    ) -> Result<(Vec<u64>, Harvest), Error> {
        let n = self.seen.len();
        let mut now = vec![0u64; n];
        for &(id, count) in pairs {
            let i = usize::try_from(id).unwrap_or(usize::MAX).wrapping_sub(1);
            match now.get_mut(i) {
                Some(v) => *v = v.saturating_add(count),
                None => {
                    return Err(Error::BadCoverId {
                        slot,
                        id,
                        nsites: n,
                    })
                }
            }
        }
        let mut outcome = Harvest::default();
        let deltas = now
            .iter()
            .zip(self.seen.iter())
            .map(|(&now, &then)| {
                let delta = if now >= then {
                    now - then
                } else {
                    outcome.went_back += 1;
                    now
                };
                outcome.added = outcome.added.saturating_add(delta);
                delta
            })
            .collect();
        self.seen = now;
        Ok((deltas, outcome))
    }
}

#[cfg(test)]
mod tests;
