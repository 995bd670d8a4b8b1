//! The Wing–Gong linearizability search with Lowe's memoization (as in porcupine and Knossos):
//! walk the operations in invocation/return order, linearize an invoked operation when the model
//! accepts its answer, backtrack at a return whose operation was not linearized yet, and skip any
//! (linearized set, state) pair already explored. Indeterminate operations return "never", so they
//! may be linearized anywhere after their invocation, or (at the end) not at all.

use std::collections::{HashMap, HashSet};

use crate::{
    history::{History, Input, Op, Output},
    model::{State, UNSEEN, step},
};

/// Search steps allowed per key before giving up (the history is then undecided).
const BUDGET: u64 = 20_000_000;

/// What the checker decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's history is linearizable.
    Linearizable,
    /// This key's history is not.
    NotLinearizable {
        /// The key.
        key: String,
        /// What could not be placed, for a person.
        detail: String,
    },
    /// The search ran out of budget on this key.
    Undecided {
        /// The key.
        key: String,
    },
}

impl Verdict {
    /// Whether the history was found linearizable.
    pub fn is_linearizable(&self) -> bool {
        *self == Verdict::Linearizable
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::NotLinearizable { key, detail } => {
                write!(f, "NOT linearizable (key {key}): {detail}")
            }
            Verdict::Undecided { key } => write!(
                f,
                "undecided (key {key}): the search exceeded {BUDGET} steps"
            ),
        }
    }
}

/// Checks every key of `history` (default reads are left out: see [`crate::check_monotonic`]).
pub fn check(history: &History) -> Verdict {
    for key in history.keys() {
        let verdict = check_key(&history.of_key(&key));
        if !verdict.is_linearizable() {
            return verdict;
        }
    }
    Verdict::Linearizable
}

const NONE: usize = usize::MAX;

/// Checks the operations of one key.
pub fn check_key(all: &[Op]) -> Verdict {
    let key = all.first().map(|o| o.key.clone()).unwrap_or_default();
    let ops: Vec<&Op> = all
        .iter()
        .filter(|o| match o.input {
            Input::LocalRead => false,
            Input::Read => !o.indeterminate(),
            _ => true,
        })
        .collect();
    if ops.is_empty() {
        return Verdict::Linearizable;
    }
    // The version each value was seen at, for indeterminate writes.
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for o in &ops {
        match (&o.input, &o.output) {
            (Input::Create { value } | Input::Cas { value, .. }, Output::Written { version })
            | (_, Output::Value { value, version }) => {
                seen.insert(value.as_str(), *version);
            }
            _ => {}
        }
    }
    let version_of = |o: &Op| match &o.input {
        Input::Create { value } | Input::Cas { value, .. } => {
            seen.get(value.as_str()).copied().unwrap_or(UNSEEN)
        }
        _ => UNSEEN,
    };
    let versions: Vec<u64> = ops.iter().map(|o| version_of(o)).collect();

    // Entries: 1 + 2i is op i's call, 2 + 2i its return; 0 is the head.
    let n = ops.len();
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        let ret = if o.indeterminate() { u64::MAX } else { o.ret };
        events.push((o.call, 0, 1 + 2 * i));
        events.push((ret, 1, 2 + 2 * i));
    }
    events.sort();
    let mut next = vec![NONE; 2 * n + 1];
    let mut prev = vec![NONE; 2 * n + 1];
    let mut last = 0;
    for &(_, _, e) in &events {
        next[last] = e;
        prev[e] = last;
        last = e;
    }
    let op_of = |e: usize| (e - 1) / 2;
    let is_call = |e: usize| e % 2 == 1;

    fn unlink(next: &mut [usize], prev: &mut [usize], e: usize) {
        let (p, n) = (prev[e], next[e]);
        next[p] = n;
        if n != NONE {
            prev[n] = p;
        }
    }
    fn relink(next: &mut [usize], prev: &mut [usize], e: usize) {
        let (p, n) = (prev[e], next[e]);
        next[p] = e;
        if n != NONE {
            prev[n] = e;
        }
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut calls: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut entry = next[0];
    let mut best: Vec<usize> = Vec::new();
    let mut steps = 0u64;
    while next[0] != NONE {
        steps += 1;
        if steps > BUDGET {
            return Verdict::Undecided { key };
        }
        if is_call(entry) {
            let i = op_of(entry);
            let o = ops[i];
            let mut moved = false;
            if let Some(after) = step(&state, &o.input, &o.output, versions[i]) {
                let mut with = linearized.clone();
                with[i / 64] |= 1 << (i % 64);
                if cache.insert((with.clone(), after.clone())) {
                    calls.push((entry, std::mem::replace(&mut state, after)));
                    linearized = with;
                    // Lift the call and its return out of the list.
                    unlink(&mut next, &mut prev, entry);
                    unlink(&mut next, &mut prev, entry + 1);
                    if calls.len() > best.len() {
                        best = calls.iter().map(|(e, _)| op_of(*e)).collect();
                    }
                    entry = next[0];
                    moved = true;
                }
            }
            if !moved {
                entry = next[entry];
            }
        } else {
            // A return whose operation is not linearized yet: backtrack.
            let Some((e, before)) = calls.pop() else {
                return Verdict::NotLinearizable {
                    key,
                    detail: explain(&ops, &versions, &best),
                };
            };
            let i = op_of(e);
            state = before;
            linearized[i / 64] &= !(1 << (i % 64));
            relink(&mut next, &mut prev, e + 1);
            relink(&mut next, &mut prev, e);
            entry = next[e];
        }
    }
    Verdict::Linearizable
}

/// The longest linearization found and the operations that could not follow it.
fn explain(ops: &[&Op], versions: &[u64], best: &[usize]) -> String {
    let placed: HashSet<usize> = best.iter().copied().collect();
    let mut state: State = None;
    let mut lines = Vec::new();
    for &i in best {
        if let Some(s) = step(&state, &ops[i].input, &ops[i].output, versions[i]) {
            state = s;
        }
    }
    let mut stuck: Vec<&Op> = (0..ops.len())
        .filter(|i| !placed.contains(i) && !ops[*i].indeterminate())
        .map(|i| ops[i])
        .collect();
    stuck.sort_by_key(|o| o.ret);
    for o in stuck.iter().take(3) {
        lines.push(format!("  {o}"));
    }
    format!(
        "the longest linearization found places {} of {} operations, leaving the key {}; none of the rest can follow it, first by return:\n{}",
        best.len(),
        ops.len(),
        match &state {
            None => "absent".to_string(),
            Some((v, n)) if *n == UNSEEN => format!("at {v:?} (an indeterminate write never read)"),
            Some((v, n)) => format!("at {v:?} version {n}"),
        },
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, call: u64, ret: u64, input: Input, output: Output) -> Op {
        Op {
            client,
            replica: 0,
            key: "k".into(),
            input,
            output,
            call,
            ret,
        }
    }
    fn create(v: &str) -> Input {
        Input::Create { value: v.into() }
    }
    fn cas(e: u64, v: &str) -> Input {
        Input::Cas {
            expected: e,
            value: v.into(),
        }
    }
    fn written(v: u64) -> Output {
        Output::Written { version: v }
    }
    fn value(v: &str, n: u64) -> Output {
        Output::Value {
            value: v.into(),
            version: n,
        }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(1, 2, 3, Input::Read, value("a", 1)),
            op(0, 4, 5, cas(1, "b"), written(2)),
            op(1, 6, 7, cas(1, "c"), Output::Conflict),
            op(1, 8, 9, Input::Delete { expected: 2 }, Output::Deleted),
            op(0, 10, 11, Input::Read, Output::NotFound),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps the write and sees either state; a later read must see the write.
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 10, cas(1, "b"), written(5)),
            op(1, 3, 4, Input::Read, value("b", 5)),
            op(2, 5, 6, Input::Read, value("b", 5)),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        let h2 = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 10, cas(1, "b"), written(5)),
            op(1, 3, 4, Input::Read, value("a", 1)),
            op(2, 11, 12, Input::Read, value("b", 5)),
        ];
        assert_eq!(check_key(&h2), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_caught() {
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 3, cas(1, "b"), written(2)),
            op(1, 4, 5, Input::Read, value("a", 1)),
        ];
        let v = check_key(&h);
        assert!(matches!(v, Verdict::NotLinearizable { .. }), "{v}");
        assert!(v.to_string().contains("read(consistent)"), "{v}");
    }

    #[test]
    fn two_successful_compare_and_sets_from_one_version_are_caught() {
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(1, 2, 6, cas(1, "b"), written(3)),
            op(2, 2, 6, cas(1, "c"), written(4)),
        ];
        assert!(!check_key(&h).is_linearizable());
    }

    #[test]
    fn a_create_over_an_existing_key_is_caught() {
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(1, 2, 3, create("b"), written(2)),
        ];
        assert!(!check_key(&h).is_linearizable());
    }

    #[test]
    fn indeterminate_writes_may_or_may_not_have_happened() {
        // Took effect: a later read sees it (at the version it was seen at).
        let took = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 3, cas(1, "b"), Output::Unknown),
            op(1, 10, 11, Input::Read, value("b", 7)),
            op(1, 12, 13, cas(7, "c"), written(8)),
        ];
        assert_eq!(check_key(&took), Verdict::Linearizable);
        // Did not: reads keep seeing the old value, and a conflicting write goes through.
        let lost = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 3, cas(1, "b"), Output::Unknown),
            op(1, 10, 11, Input::Read, value("a", 1)),
            op(1, 12, 13, cas(1, "c"), written(8)),
            op(2, 14, 15, Input::Read, value("c", 8)),
        ];
        assert_eq!(check_key(&lost), Verdict::Linearizable);
        // Took effect late (after a read that did not see it): still fine, it never returned.
        let late = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 3, cas(1, "b"), Output::Unknown),
            op(1, 10, 11, Input::Read, value("a", 1)),
            op(1, 20, 21, Input::Read, value("b", 9)),
        ];
        assert_eq!(check_key(&late), Verdict::Linearizable);
        // But it cannot be undone: seen, then the old value again, is not linearizable.
        let flicker = [
            op(0, 0, 1, create("a"), written(1)),
            op(0, 2, 3, cas(1, "b"), Output::Unknown),
            op(1, 10, 11, Input::Read, value("b", 9)),
            op(1, 20, 21, Input::Read, value("a", 1)),
        ];
        assert!(!check_key(&flicker).is_linearizable());
    }

    #[test]
    fn an_indeterminate_write_never_seen_can_only_be_absent() {
        // A value no one wrote successfully cannot be read.
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(1, 2, 3, Input::Read, value("z", 4)),
        ];
        assert!(!check_key(&h).is_linearizable());
    }

    #[test]
    fn deletes_and_recreates() {
        let h = [
            op(0, 0, 1, create("a"), written(1)),
            op(1, 2, 3, Input::Delete { expected: 1 }, Output::Deleted),
            op(2, 4, 5, create("b"), written(3)),
            op(0, 6, 7, Input::Delete { expected: 1 }, Output::Conflict),
            op(1, 8, 9, Input::Read, value("b", 3)),
        ];
        assert_eq!(check_key(&h), Verdict::Linearizable);
        let lost_delete = [
            op(0, 0, 1, create("a"), written(1)),
            op(1, 2, 3, Input::Delete { expected: 1 }, Output::Deleted),
            op(0, 4, 5, Input::Read, value("a", 1)),
        ];
        assert!(!check_key(&lost_delete).is_linearizable());
    }

    #[test]
    fn many_concurrent_clients_are_checked_quickly() {
        // 6 clients, 2000 operations, each round all concurrent; one CAS wins per round.
        let mut h = vec![op(0, 0, 1, create("v0"), written(1))];
        let mut t = 10;
        for round in 0..330u64 {
            let version = round + 1;
            let winner = round % 6;
            for c in 0..6usize {
                let v = format!("r{round}c{c}");
                let out = if c as u64 == winner {
                    written(version + 1)
                } else {
                    Output::Conflict
                };
                h.push(op(c, t, t + 5, cas(version, &v), out));
            }
            t += 10;
        }
        assert_eq!(check_key(&h), Verdict::Linearizable);
    }
}
