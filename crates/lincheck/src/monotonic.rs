//! Default (non-consistent) reads: what a replica answers from its own applied state, which only
//! moves forward. So, per replica and key, a read never shows an older version than one that
//! replica already returned (to a read that completed before this one began, or to a write it
//! answered: a write through a replica is answered once that replica applied it). A replica
//! restart starts a new epoch: a restarted process may begin from an older state it then replays.

use std::collections::HashMap;

use crate::history::{History, Input, Op, Output};

/// Checks the guarantee over `history`; `restarts` are (replica, time in ns) of process restarts.
/// Answers how many default reads were checked, or the first violation.
pub fn check_monotonic(history: &History, restarts: &[(usize, u64)]) -> Result<usize, String> {
    let epoch = |o: &Op| {
        restarts
            .iter()
            .filter(|(r, t)| *r == o.replica && *t <= o.call)
            .count()
    };
    // (replica, epoch, key) -> observations with their versions.
    type Groups<'a> = HashMap<(usize, usize, &'a str), Vec<(&'a Op, u64)>>;
    let mut groups: Groups = HashMap::new();
    let mut checked = 0;
    for o in &history.ops {
        let version = match (&o.input, &o.output) {
            (Input::LocalRead, Output::Value { version, .. }) => *version,
            (Input::Create { .. } | Input::Cas { .. }, Output::Written { version }) => *version,
            _ => continue,
        };
        if o.input == Input::LocalRead {
            checked += 1;
        }
        groups
            .entry((o.replica, epoch(o), o.key.as_str()))
            .or_default()
            .push((o, version));
    }
    for obs in groups.values() {
        let mut by_ret: Vec<&(&Op, u64)> = obs.iter().collect();
        by_ret.sort_by_key(|(o, _)| o.ret);
        let mut by_call: Vec<&(&Op, u64)> = obs
            .iter()
            .filter(|(o, _)| o.input == Input::LocalRead)
            .collect();
        by_call.sort_by_key(|(o, _)| o.call);
        let mut done = 0;
        let mut newest: Option<&(&Op, u64)> = None;
        for b in by_call {
            while done < by_ret.len() && by_ret[done].0.ret < b.0.call {
                if newest.is_none_or(|n| by_ret[done].1 > n.1) {
                    newest = Some(by_ret[done]);
                }
                done += 1;
            }
            if let Some(a) = newest
                && b.1 < a.1
            {
                return Err(format!(
                    "replica {} went back in time on {}: it had answered version {} ({}), then a later default read answered version {} ({})",
                    b.0.replica + 1,
                    b.0.key,
                    a.1,
                    a.0,
                    b.1,
                    b.0
                ));
            }
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(replica: usize, call: u64, ret: u64, version: u64) -> Op {
        Op {
            client: 0,
            replica,
            key: "k".into(),
            input: Input::LocalRead,
            output: Output::Value {
                value: format!("v{version}"),
                version,
            },
            call,
            ret,
        }
    }

    #[test]
    fn a_replica_never_goes_back() {
        let ok = History {
            ops: vec![read(0, 0, 1, 3), read(0, 2, 3, 5), read(1, 4, 5, 2)],
        };
        assert_eq!(check_monotonic(&ok, &[]), Ok(3));
        let back = History {
            ops: vec![read(0, 0, 1, 5), read(0, 2, 3, 3)],
        };
        let e = check_monotonic(&back, &[]).unwrap_err();
        assert!(e.contains("replica 1 went back in time"), "{e}");
        // Overlapping reads may answer in either order.
        let overlap = History {
            ops: vec![read(0, 0, 10, 5), read(0, 2, 3, 3)],
        };
        assert!(check_monotonic(&overlap, &[]).is_ok());
        // After a restart the replica starts a new epoch.
        assert!(check_monotonic(&back, &[(0, 2)]).is_ok());
    }

    #[test]
    fn a_write_answered_by_a_replica_is_seen_by_its_later_reads() {
        let write = Op {
            client: 1,
            replica: 0,
            key: "k".into(),
            input: Input::Cas {
                expected: 3,
                value: "w".into(),
            },
            output: Output::Written { version: 7 },
            call: 0,
            ret: 1,
        };
        let h = History {
            ops: vec![write, read(0, 2, 3, 3)],
        };
        assert!(check_monotonic(&h, &[]).is_err());
    }
}
