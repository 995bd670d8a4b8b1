//! The versioned register one key is: absent, or a value at a version. [`step`] says what state an
//! operation with its answer leaves, or that the answer is impossible from that state.

use crate::history::{Input, Output};

/// A key's state: absent, or `(value, version)`.
pub type State = Option<(String, u64)>;

/// The version of a value no answer ever showed (an indeterminate write never read): equal to no
/// version a client can send, so it only matches itself.
pub const UNSEEN: u64 = u64::MAX;

/// The state after `input` answered `output` from `state`, or `None` if that answer is impossible.
/// For an indeterminate write, `version` is the version its value was later seen at
/// ([`UNSEEN`] if never); it applies if its precondition holds, else changes nothing.
pub fn step(state: &State, input: &Input, output: &Output, version: u64) -> Option<State> {
    let holds = |expected: u64| matches!(state, Some((_, v)) if *v == expected);
    match (input, output) {
        (Input::Create { value }, Output::Written { version }) => {
            state.is_none().then(|| Some((value.clone(), *version)))
        }
        (Input::Create { .. }, Output::Conflict) => state.is_some().then(|| state.clone()),
        (Input::Create { value }, Output::Unknown) => Some(if state.is_none() {
            Some((value.clone(), version))
        } else {
            state.clone()
        }),
        (Input::Cas { expected, value }, Output::Written { version }) => {
            holds(*expected).then(|| Some((value.clone(), *version)))
        }
        (Input::Cas { expected, .. }, Output::Conflict) => {
            (!holds(*expected)).then(|| state.clone())
        }
        (Input::Cas { expected, value }, Output::Unknown) => Some(if holds(*expected) {
            Some((value.clone(), version))
        } else {
            state.clone()
        }),
        (Input::Delete { expected }, Output::Deleted) => holds(*expected).then_some(None),
        (Input::Delete { .. }, Output::NotFound) => state.is_none().then_some(None),
        (Input::Delete { expected }, Output::Conflict) => {
            (state.is_some() && !holds(*expected)).then(|| state.clone())
        }
        (Input::Delete { expected }, Output::Unknown) => Some(if holds(*expected) {
            None
        } else {
            state.clone()
        }),
        (Input::Read, Output::Value { value, version }) => {
            (state.as_ref() == Some(&(value.clone(), *version))).then(|| state.clone())
        }
        (Input::Read, Output::NotFound) => state.is_none().then_some(None),
        // A read without an answer changed nothing.
        (Input::Read, Output::Unknown) => Some(state.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &str, n: u64) -> State {
        Some((v.to_string(), n))
    }

    #[test]
    fn preconditions_decide_each_answer() {
        let create = Input::Create { value: "a".into() };
        assert_eq!(
            step(&None, &create, &Output::Written { version: 3 }, 0),
            Some(at("a", 3))
        );
        assert_eq!(
            step(&at("x", 1), &create, &Output::Written { version: 3 }, 0),
            None
        );
        assert_eq!(step(&None, &create, &Output::Conflict, 0), None);
        let cas = Input::Cas {
            expected: 3,
            value: "b".into(),
        };
        assert_eq!(
            step(&at("a", 3), &cas, &Output::Written { version: 5 }, 0),
            Some(at("b", 5))
        );
        assert_eq!(
            step(&at("a", 4), &cas, &Output::Written { version: 5 }, 0),
            None
        );
        assert_eq!(step(&None, &cas, &Output::Conflict, 0), Some(None));
        assert_eq!(step(&at("a", 3), &cas, &Output::Conflict, 0), None);
        let delete = Input::Delete { expected: 3 };
        assert_eq!(step(&at("a", 3), &delete, &Output::Deleted, 0), Some(None));
        assert_eq!(step(&None, &delete, &Output::NotFound, 0), Some(None));
        assert_eq!(
            step(&at("a", 4), &delete, &Output::Conflict, 0),
            Some(at("a", 4))
        );
        assert_eq!(step(&None, &delete, &Output::Conflict, 0), None);
        // An indeterminate write applies only where its precondition holds.
        assert_eq!(
            step(&at("a", 3), &cas, &Output::Unknown, 9),
            Some(at("b", 9))
        );
        assert_eq!(
            step(&at("a", 2), &cas, &Output::Unknown, 9),
            Some(at("a", 2))
        );
        let read = Input::Read;
        let seen = Output::Value {
            value: "a".into(),
            version: 3,
        };
        assert_eq!(step(&at("a", 3), &read, &seen, 0), Some(at("a", 3)));
        assert_eq!(step(&at("a", 4), &read, &seen, 0), None);
        assert_eq!(step(&None, &read, &Output::NotFound, 0), Some(None));
    }
}
