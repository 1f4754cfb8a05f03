//! The raw library's side of `concord-bench sync`: the time plain Automerge needs for one
//! client's share of the same work, in the same run. The client makes its M edits, one
//! commit each, and applies the other N−1 clients' edits from their encoded bytes in one
//! `apply_changes` every k rounds (a round: one edit of every client): k = 1 is a device
//! applying each round as it comes, k = M applies everything once at the end (the
//! cheapest order, which no live device gets). Nothing is stored or sent. The other
//! clients' edits are made beforehand on forks of the seed document, one actor each, and
//! are not timed.
//!
//! Automerge's cost of applying many increments of one counter grows with how many it
//! already holds for every batch after the first, so the fewer batches the cheaper: times
//! N and divided by the machine's cores, a schedule's figure is the soonest N clients
//! applying that often could all converge if the library's own work were all they did.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

use crate::sync::{own_key, Edit, COUNTER, TEXT};

/// Rounds of the measurement; the fastest is kept (it is a floor).
const ROUNDS: usize = 5;

/// How many rounds the measured schedules apply at a time: each round, every tenth, all
/// at the end (`usize::MAX`: once, after the client's last edit).
pub const EVERY: [usize; 3] = [1, 10, usize::MAX];

/// One client's share with plain Automerge, applying every `EVERY[i]` rounds: the fastest
/// of [`ROUNDS`] each.
pub fn one_client(edit: Edit, clients: usize, edits: usize) -> Result<[Duration; 3]> {
    let seed = seed()?;
    let others = others(edit, &seed, clients, edits)?;
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        for (i, every) in EVERY.into_iter().enumerate() {
            best[i] = best[i].min(replay(edit, every, &seed, &others)?);
        }
    }
    Ok(best)
}

/// The shared document as the bench's seed makes it: a counter at 0 and an empty text.
fn seed() -> Result<Vec<u8>> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, COUNTER, ScalarValue::counter(0))?;
    doc.put_object(ROOT, TEXT, ObjType::Text)?;
    doc.commit();
    Ok(doc.save())
}

/// Opens the seed as client `index`'s device.
fn device(seed: &[u8], index: usize) -> Result<(AutoCommit, ObjId)> {
    let mut actor = vec![0x5e; 16];
    actor[..8].copy_from_slice(&(index as u64).to_be_bytes());
    let doc = AutoCommit::load(seed)?.with_actor(ActorId::from(actor));
    let text = match doc.get(ROOT, TEXT)? {
        Some((_, id)) => id,
        None => anyhow::bail!("the seed has no text"),
    };
    Ok((doc, text))
}

/// Edit number `n` (from 1) of client `index`, committed.
fn make(edit: Edit, doc: &mut AutoCommit, text: &ObjId, index: usize, n: usize) -> Result<()> {
    match edit {
        Edit::Counter => doc.increment(ROOT, COUNTER, 1)?,
        Edit::OwnKey => doc.put(ROOT, own_key(index), n as i64)?,
        Edit::Text => doc.splice_text(text, 0, 0, "x")?,
    }
    doc.commit();
    Ok(())
}

/// `rounds[n]`: the encoded change of edit n + 1 of every client but client 0.
fn others(edit: Edit, seed: &[u8], clients: usize, edits: usize) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut rounds = vec![Vec::with_capacity(clients.saturating_sub(1)); edits];
    for index in 1..clients {
        let (mut doc, text) = device(seed, index)?;
        for (n, round) in rounds.iter_mut().enumerate() {
            make(edit, &mut doc, &text, index, n + 1)?;
            let change = doc.get_last_local_change().context("a local change")?;
            round.push(change.raw_bytes().to_vec());
        }
    }
    Ok(rounds)
}

/// Client 0's share: its edits, and the others' applied every `every` rounds.
fn replay(edit: Edit, every: usize, seed: &[u8], others: &[Vec<Vec<u8>>]) -> Result<Duration> {
    let edits = others.len();
    let (mut doc, text) = device(seed, 0)?;
    let apply = |doc: &mut AutoCommit, rounds: &[Vec<Vec<u8>>]| -> Result<()> {
        let changes = rounds
            .iter()
            .flatten()
            .map(|bytes| Change::try_from(bytes.as_slice()))
            .collect::<Result<Vec<_>, _>>()?;
        doc.apply_changes(changes)?;
        Ok(())
    };
    let start = Instant::now();
    let mut applied = 0;
    for n in 0..edits {
        make(edit, &mut doc, &text, 0, n + 1)?;
        if (n + 1) % every.min(edits) == 0 || n + 1 == edits {
            apply(&mut doc, &others[applied..=n])?;
            applied = n + 1;
        }
    }
    let elapsed = start.elapsed();
    check(
        edit,
        &doc,
        &text,
        others.first().map_or(0, Vec::len) + 1,
        edits,
    )?;
    Ok(elapsed)
}

/// The replay ended holding every client's edits, counted as the Concord clients count.
fn check(edit: Edit, doc: &AutoCommit, text: &ObjId, clients: usize, edits: usize) -> Result<()> {
    let number = |key: &str| -> Result<i64> {
        Ok(doc
            .get(ROOT, key)?
            .and_then(|(v, _)| v.as_i64())
            .unwrap_or(0))
    };
    let held = match edit {
        Edit::Counter => number(COUNTER)?,
        Edit::OwnKey => (0..clients)
            .map(|i| number(&own_key(i)))
            .sum::<Result<i64>>()?,
        Edit::Text => doc.length(text) as i64,
    };
    let expected = (clients * edits) as i64;
    if held != expected {
        anyhow::bail!("the raw replay holds {held} edits, expected {expected}");
    }
    Ok(())
}
