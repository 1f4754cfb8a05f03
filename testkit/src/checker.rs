//! The checker run after healing, over what the run recorded: every node's digest (read
//! offline), every device's record, the `/cluster` samples. It reports rather than panics,
//! so a run under the `leader` write concern can measure the acknowledged writes it lost.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::cluster::Sample;
use crate::digest::{Digest, DocDigest};
use crate::reads::{ReadObservation, ReadOutcome};
use crate::writers::DeviceRecord;

/// Per document, the (origin, seq) pairs one node logged.
type Logged<'a> = BTreeMap<&'a String, BTreeSet<(String, u64)>>;

/// What the checker found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub nodes: usize,
    pub devices: usize,
    /// Updates the devices committed (their own, all documents).
    pub committed: u64,
    /// Updates seen acknowledged.
    pub acked: u64,
    /// Acknowledged updates missing on some node: (node, doc, origin, seq).
    pub lost_acked: Vec<(u64, String, String, u64)>,
    /// Committed updates missing on some node (includes the lost acknowledged ones).
    pub missing_committed: u64,
    /// Nodes whose documents, vectors or log differ from the most common digest.
    pub divergent_nodes: Vec<u64>,
    /// Devices with a non-empty outbox or content different from the cluster's.
    pub unconverged_devices: Vec<String>,
    /// Documents whose effect is not exactly once (a counter or text length that does not
    /// equal the number of updates written to it).
    pub effect_mismatches: Vec<String>,
    /// Terms in which more than one node said it was the leader.
    pub split_terms: Vec<(u64, BTreeSet<u64>)>,
    /// Distinct terms seen with a leader.
    pub terms_with_leader: usize,
    /// `min_lsn` probes: served, refused (`replica_behind` / `unavailable`), failed.
    pub reads: (usize, usize, usize),
    /// Probes served state older than their `min_lsn`.
    pub stale_reads: Vec<String>,
}

impl Report {
    /// Nothing lost, nothing divergent, everyone converged, one leader per term.
    pub fn ok(&self) -> bool {
        self.lost_acked.is_empty()
            && self.missing_committed == 0
            && self.divergent_nodes.is_empty()
            && self.unconverged_devices.is_empty()
            && self.effect_mismatches.is_empty()
            && self.split_terms.is_empty()
            && self.stale_reads.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes {}, devices {}, committed {}, acked {}, lost acked {}, missing committed {}, \
             divergent nodes {:?}, unconverged devices {:?}, effect mismatches {:?}, \
             terms with a leader {}, split terms {:?}, reads served/refused/failed {:?}, \
             stale reads {}",
            self.nodes,
            self.devices,
            self.committed,
            self.acked,
            self.lost_acked.len(),
            self.missing_committed,
            self.divergent_nodes,
            self.unconverged_devices,
            self.effect_mismatches,
            self.terms_with_leader,
            self.split_terms,
            self.reads,
            self.stale_reads.len(),
        )?;
        for stale in self.stale_reads.iter().take(10) {
            write!(f, "\n  stale read: {stale}")?;
        }
        for (node, doc, origin, seq) in self.lost_acked.iter().take(10) {
            write!(f, "\n  lost on node {node}: {doc} {origin}#{seq}")?;
        }
        Ok(())
    }
}

/// Checks a run. `digests` are the members' databases after the run.
pub fn check(
    digests: &BTreeMap<u64, Digest>,
    devices: &[DeviceRecord],
    samples: &[Sample],
    reads: &[ReadObservation],
) -> Report {
    let mut report = Report {
        nodes: digests.len(),
        devices: devices.len(),
        ..Report::default()
    };

    // Durability: every acknowledged and every committed update is on every node.
    let logged: BTreeMap<u64, Logged<'_>> = digests
        .iter()
        .map(|(n, d)| (*n, d.docs.keys().map(|doc| (doc, d.logged(doc))).collect()))
        .collect();
    let holds = |node: u64, doc: &str, origin: &str, seq: u64| {
        logged[&node]
            .get(&doc.to_string())
            .is_some_and(|s| s.contains(&(origin.to_string(), seq)))
    };
    for dev in devices {
        report.acked += dev.acked.len() as u64;
        for a in &dev.acked {
            for node in digests.keys() {
                if !holds(*node, &a.doc, &dev.origin, a.seq) {
                    report
                        .lost_acked
                        .push((*node, a.doc.clone(), dev.origin.clone(), a.seq));
                }
            }
        }
        for (doc, (vv, _, _)) in &dev.docs {
            let own = vv.get(&dev.origin).copied().unwrap_or(0);
            report.committed += own;
            for node in digests.keys() {
                for seq in 1..=own {
                    if !holds(*node, doc, &dev.origin, seq) {
                        report.missing_committed += 1;
                    }
                }
            }
        }
    }

    // Identity: every node equal to the most common digest (documents, vectors, log).
    let mut counts: Vec<(&BTreeMap<String, DocDigest>, usize)> = Vec::new();
    for d in digests.values() {
        match counts.iter_mut().find(|(docs, _)| **docs == d.docs) {
            Some((_, n)) => *n += 1,
            None => counts.push((&d.docs, 1)),
        }
    }
    let reference = counts.iter().max_by_key(|(_, n)| *n).map(|(docs, _)| *docs);
    if let Some(reference) = reference {
        for (node, d) in digests {
            if d.docs != *reference {
                report.divergent_nodes.push(*node);
            }
        }
        // Convergence: empty outbox, same vectors as the cluster, same content everywhere.
        let first_json = devices.first().map(|d| &d.docs);
        for dev in devices {
            let mut ok = true;
            for (doc, (vv, pending, json)) in &dev.docs {
                let cluster_vv = reference.get(doc).map(|d| &d.version);
                ok &= *pending == 0 && Some(vv) == cluster_vv;
                ok &= first_json
                    .and_then(|f| f.get(doc))
                    .is_some_and(|(_, _, j)| j == json);
            }
            if !ok {
                report.unconverged_devices.push(dev.origin.clone());
            }
        }
        // Exactly once in effect: a counter equals its increments, a text its inserts —
        // every write the devices made (each +1 or one "x"), when they recorded them;
        // otherwise every update in the version vector. (A device that re-authored writes
        // the cluster lost as one whole-document update makes fewer updates than writes.)
        let mut writes: BTreeMap<&str, u64> = BTreeMap::new();
        for dev in devices {
            for w in &dev.written {
                *writes.entry(w.doc.as_str()).or_default() += 1;
            }
        }
        if let Some(first) = devices.first() {
            for (doc, (vv, _, json)) in &first.docs {
                let updates: u64 = vv.values().sum();
                let kind = reference.get(doc).map(|d| d.kind.as_str()).unwrap_or("");
                let written = writes.get(doc.as_str()).copied().filter(|w| *w > 0);
                let (effect, expected) = match kind {
                    // The first update of an Automerge document made the counter (+0).
                    "automerge" => (
                        json.get("n").and_then(|v| v.as_u64()),
                        written.unwrap_or(updates.saturating_sub(1)),
                    ),
                    _ => (
                        json.get("text")
                            .and_then(|v| v.as_str())
                            .map(|t| t.len() as u64),
                        written.unwrap_or(updates),
                    ),
                };
                if updates > 0 && effect != Some(expected) {
                    report
                        .effect_mismatches
                        .push(format!("{doc}: {effect:?} for {expected} updates"));
                }
            }
        }
    }

    // No split brain: at most one leader per term in the samples.
    let mut leaders: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for s in samples {
        if s.status.role == "leader" {
            leaders.entry(s.status.term).or_default().insert(s.node);
        }
    }
    report.terms_with_leader = leaders.len();
    report.split_terms = leaders.into_iter().filter(|(_, l)| l.len() > 1).collect();

    // Session guarantees: a read with `min_lsn` L is served at L or later and holds every
    // update acknowledged at or below L; or it is refused (retryable) — never older state.
    for r in reads {
        match &r.outcome {
            ReadOutcome::Served { lsn, version } => {
                report.reads.0 += 1;
                if *lsn < r.min_lsn {
                    report.stale_reads.push(format!(
                        "{} {}: served lsn {lsn} for min_lsn {}",
                        r.url, r.doc, r.min_lsn
                    ));
                    continue;
                }
                for dev in devices {
                    let held = version.get(&dev.origin).copied().unwrap_or(0);
                    let missing = dev.acked.iter().find(|a| {
                        a.doc == r.doc && a.lsn.is_some_and(|l| l <= r.min_lsn) && a.seq > held
                    });
                    if let Some(a) = missing {
                        report.stale_reads.push(format!(
                            "{} {} at min_lsn {}: lacks {}#{} acknowledged at lsn {:?}",
                            r.url, r.doc, r.min_lsn, dev.origin, a.seq, a.lsn
                        ));
                    }
                }
            }
            ReadOutcome::Refused(_) => report.reads.1 += 1,
            ReadOutcome::Failed(_) => report.reads.2 += 1,
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterStatus;
    use crate::digest::LoggedUpdate;
    use crate::writers::{Acked, Written};
    use std::time::Duration;

    fn digest(seqs: &[u64]) -> Digest {
        let log: Vec<LoggedUpdate> = seqs
            .iter()
            .enumerate()
            .map(|(i, s)| LoggedUpdate {
                index: i as i64 + 1,
                origin: "a".into(),
                seq: *s,
                hash: *s,
                len: 1,
            })
            .collect();
        let mut docs = BTreeMap::new();
        docs.insert(
            "d".to_string(),
            DocDigest {
                kind: "yrs".into(),
                version: [("a".to_string(), seqs.len() as u64)].into(),
                log,
            },
        );
        Digest {
            last_applied: seqs.len() as u64,
            docs,
        }
    }

    fn device(acked: u64, committed: u64) -> DeviceRecord {
        let mut docs = BTreeMap::new();
        docs.insert(
            "d".to_string(),
            (
                [("a".to_string(), committed)].into(),
                0,
                serde_json::json!({ "text": "x".repeat(committed as usize) }),
            ),
        );
        DeviceRecord {
            origin: "a".into(),
            written: Vec::new(),
            acked: (1..=acked)
                .map(|seq| Acked {
                    doc: "d".into(),
                    seq,
                    at: Duration::ZERO,
                    lsn: None,
                })
                .collect(),
            docs,
        }
    }

    fn sample(node: u64, term: u64, role: &str) -> Sample {
        Sample {
            at: Duration::ZERO,
            node,
            status: ClusterStatus {
                node_id: node,
                role: role.into(),
                term,
                ..ClusterStatus::default()
            },
        }
    }

    #[test]
    fn a_healthy_run_passes() {
        let digests = [(1, digest(&[1, 2])), (2, digest(&[1, 2]))].into();
        let samples = [
            sample(1, 1, "leader"),
            sample(2, 1, "follower"),
            sample(2, 2, "leader"),
        ];
        let r = check(&digests, &[device(2, 2)], &samples, &[]);
        assert!(r.ok(), "{r}");
        assert_eq!((r.acked, r.committed, r.terms_with_leader), (2, 2, 2));
    }

    #[test]
    fn finds_a_lost_ack_a_divergent_node_and_two_leaders_in_a_term() {
        let digests = [
            (1, digest(&[1, 2])),
            (2, digest(&[1, 2])),
            (3, digest(&[1])),
        ]
        .into();
        let samples = [sample(1, 4, "leader"), sample(3, 4, "leader")];
        let r = check(&digests, &[device(2, 2)], &samples, &[]);
        assert!(!r.ok());
        assert_eq!(r.lost_acked, vec![(3, "d".into(), "a".into(), 2)]);
        assert_eq!(r.divergent_nodes, vec![3]);
        assert_eq!(r.split_terms, vec![(4, [1, 3].into())]);
    }

    #[test]
    fn finds_an_unconverged_device_and_a_double_effect() {
        let digests = [(1, digest(&[1, 2]))].into();
        let mut d = device(1, 2);
        d.docs.get_mut("d").unwrap().1 = 1; // one update still in the outbox
        d.docs.get_mut("d").unwrap().2 = serde_json::json!({ "text": "xxx" });
        let r = check(&digests, &[d], &[], &[]);
        assert_eq!(r.unconverged_devices, vec!["a".to_string()]);
        assert_eq!(r.effect_mismatches.len(), 1);
    }

    #[test]
    fn counts_effect_against_the_writes_made_not_the_updates() {
        // Three writes, re-authored into two updates (a repair): exactly once in effect.
        let digests = [(1, digest(&[1, 2]))].into();
        let mut d = device(2, 2);
        d.written = (1..=3)
            .map(|seq| Written {
                doc: "d".into(),
                seq,
                at: Duration::ZERO,
            })
            .collect();
        d.docs.get_mut("d").unwrap().2 = serde_json::json!({ "text": "xxx" });
        assert!(check(&digests, &[d.clone()], &[], &[])
            .effect_mismatches
            .is_empty());
        // A write whose effect is missing is found.
        d.docs.get_mut("d").unwrap().2 = serde_json::json!({ "text": "xx" });
        assert_eq!(check(&digests, &[d], &[], &[]).effect_mismatches.len(), 1);
    }

    #[test]
    fn finds_a_read_older_than_its_min_lsn() {
        let digests = [(1, digest(&[1, 2]))].into();
        let mut d = device(2, 2);
        d.acked[0].lsn = Some(5);
        d.acked[1].lsn = Some(7);
        let read = |min_lsn, lsn, seq: u64, outcome: Option<&str>| ReadObservation {
            at: Duration::ZERO,
            url: "n1".into(),
            doc: "d".into(),
            min_lsn,
            outcome: match outcome {
                Some(code) => ReadOutcome::Refused(code.into()),
                None => ReadOutcome::Served {
                    lsn,
                    version: [("a".to_string(), seq)].into(),
                },
            },
        };
        let fine = [
            read(7, 7, 2, None),
            read(5, 6, 1, None),
            read(9, 0, 0, Some("replica_behind")),
        ];
        let r = check(&digests, &[d.clone()], &[], &fine);
        assert!(r.ok(), "{r}");
        assert_eq!(r.reads, (2, 1, 0));
        // Served below min_lsn; served at min_lsn 7 without the update acked at 7.
        let stale = [read(7, 6, 2, None), read(7, 7, 1, None)];
        let r = check(&digests, &[d], &[], &stale);
        assert_eq!(r.stale_reads.len(), 2, "{r}");
    }
}
