//! The one bincode configuration of everything a node writes in binary: log
//! entries, the state machine, snapshot files and Raft RPC bodies. They must
//! agree byte for byte, so they are encoded and decoded only through here.
//!
//! Decoding is bounded ([`MAX_DECODE_BYTES`]): bincode reads a string's
//! length and allocates that much before it reads the bytes, so without a
//! limit a forged length prefix of 2^60 in a 13-byte Raft RPC body makes the
//! allocator fail, and a failed allocation aborts the process.

use std::io::{Read, Write};

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use bincode::error::{DecodeError, EncodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most one decode may take in, counted as bincode counts it: each
/// primitive's in-memory size, and each string's length *before* the string
/// is allocated, so an impossible length fails at once. The same number
/// bounds the body of the `/raft` routes: a message, log entry or state
/// larger than this could not be replicated anyway. The limit is not part of
/// the encoding: bytes written before it existed read the same.
pub const MAX_DECODE_BYTES: usize = 256 * 1024 * 1024;

const CONFIG: Configuration<LittleEndian, Varint, Limit<MAX_DECODE_BYTES>> =
    config::standard().with_limit::<MAX_DECODE_BYTES>();

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    bincode::serde::encode_to_vec(value, CONFIG)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    bincode::serde::decode_from_slice(bytes, CONFIG).map(|(v, _)| v)
}

pub fn encode_into<T: Serialize>(value: &T, out: &mut impl Write) -> Result<usize, EncodeError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
}

pub fn decode_from<T: DeserializeOwned>(input: &mut impl Read) -> Result<T, DecodeError> {
    bincode::serde::decode_from_std_read(input, CONFIG)
}

/// How many bytes `value` encodes to, without encoding it anywhere.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, EncodeError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, CONFIG)?;
    Ok(size.bytes_written)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use bolero::TypeGenerator;
    use openraft::error::{InstallSnapshotError, RaftError};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
        VoteResponse,
    };
    use openraft::{CommittedLeaderId, EntryPayload, Membership};

    use super::*;
    use crate::error::ClusterError;
    use crate::network::{Forwarded, Group};
    use crate::registry::{Command, Op, Outcome, RecordId, RecordState, Request, StoredRecord};
    use crate::types::{Entry, LogId, NodeAddr, NodeId, SnapshotMeta, StoredMembership, TypeConfig, Vote};

    /// bincode's standard varint: marker 253, then a little-endian u64.
    fn length_prefix(len: u64) -> Vec<u8> {
        let mut bytes = vec![253];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes
    }

    #[test]
    fn a_string_claiming_2_pow_60_bytes_fails_without_allocating() {
        let err = decode::<String>(&length_prefix(1 << 60)).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
    }

    /// The exact `/raft/forward` body that aborted a node: one group, no
    /// caller, one claim whose namespace claims 2^60 bytes.
    #[test]
    fn a_forward_body_with_a_2_pow_60_namespace_is_refused() {
        let mut body = vec![1, 0, 1, 0];
        body.extend(length_prefix(1 << 60));
        let err = decode::<Vec<Group>>(&body).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
    }

    /// Just over the limit is refused as a limit, not read as a short input.
    #[test]
    fn a_length_one_past_the_limit_is_refused() {
        let err = decode::<String>(&length_prefix(MAX_DECODE_BYTES as u64 + 1)).unwrap_err();
        assert!(matches!(err, DecodeError::LimitExceeded), "{err:?}");
    }

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(3, 1), index)
    }

    fn ops() -> Vec<Op> {
        let id = RecordId::new("payments", "order/7");
        vec![
            Op::Claim {
                id: id.clone(),
                lease_ms: 30_000,
                retention_ms: 86_400_000,
                fingerprint: Some("sha256:9f".into()),
                owner: None,
                claim_id: Some("c1".into()),
            },
            Op::Checkpoint {
                id: id.clone(),
                token: 4096,
                stage: "charged".into(),
                data_json: "{}".into(),
                lease_ms: None,
            },
            Op::Complete { id: id.clone(), token: 4096, result_json: r#"{"ok":1}"#.into(), retention_ms: Some(1_000) },
            Op::Release { id: id.clone(), token: 4096 },
            Op::Delete { id },
        ]
    }

    fn record() -> StoredRecord {
        StoredRecord {
            state: RecordState::InProgress,
            token: 4096,
            attempt: 1,
            claim_id: Some("c1".into()),
            owner: Some("checkout".into()),
            fingerprint: None,
            checkpoint: None,
            result_json: None,
            created_at_ms: 1,
            updated_at_ms: 2,
            lease_expires_at_ms: Some(3),
            expires_at_ms: 4,
            retention_ms: 5,
        }
    }

    fn membership() -> Membership<NodeId, NodeAddr> {
        let nodes: BTreeMap<_, _> = (1..=3).map(|id| (id, NodeAddr { addr: format!("127.0.0.1:700{id}") })).collect();
        Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)
    }

    /// One valid body of every message a node decodes from a peer, requests
    /// and answers alike: what the mutations below start from.
    fn samples() -> Vec<Vec<u8>> {
        let vote = Vote::new(3, 1);
        let entries: Vec<Entry> = vec![
            Entry { log_id: log_id(1), payload: EntryPayload::Blank },
            Entry { log_id: log_id(2), payload: EntryPayload::Membership(membership()) },
            Entry {
                log_id: log_id(3),
                payload: EntryPayload::Normal(Request { stamp_ms: 1_700_000_000_000, cmd: Command::Ops(ops()) }),
            },
            Entry { log_id: log_id(4), payload: EntryPayload::Normal(Request { stamp_ms: 9, cmd: Command::Tick }) },
        ];
        let append: AppendEntriesRequest<TypeConfig> =
            AppendEntriesRequest { vote, prev_log_id: Some(log_id(0)), entries, leader_commit: Some(log_id(2)) };
        let snapshot: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
            vote,
            meta: SnapshotMeta {
                last_log_id: Some(log_id(4)),
                last_membership: StoredMembership::new(Some(log_id(2)), membership()),
                snapshot_id: "3-1-4".into(),
            },
            offset: 0,
            data: vec![7; 40],
            done: true,
        };
        let groups = vec![Group { caller: Some([9; 32]), ops: ops() }, Group { caller: None, ops: ops() }];
        let outcomes = vec![
            Outcome::Acquired { token: 4096, takeover: false, record: record() },
            Outcome::InProgress { record: record(), retry_after_ms: 7 },
            Outcome::Fenced,
        ];
        let forwarded: Forwarded = Ok(vec![Ok(outcomes), Err(ClusterError::Forbidden("no grant".into()))]);
        type Answer<T, E = openraft::error::Infallible> = Result<T, RaftError<NodeId, E>>;
        let appended: Answer<AppendEntriesResponse<NodeId>> = Ok(AppendEntriesResponse::HigherVote(vote));
        let voted: Answer<VoteResponse<NodeId>> =
            Ok(VoteResponse { vote, vote_granted: true, last_log_id: Some(log_id(4)) });
        let installed: Answer<InstallSnapshotResponse<NodeId>, InstallSnapshotError> =
            Ok(InstallSnapshotResponse { vote });
        vec![
            encode(&append).unwrap(),
            encode(&VoteRequest::new(vote, Some(log_id(4)))).unwrap(),
            encode(&snapshot).unwrap(),
            encode(&groups).unwrap(),
            encode(&forwarded).unwrap(),
            encode(&appended).unwrap(),
            encode(&voted).unwrap(),
            encode(&installed).unwrap(),
        ]
    }

    /// Decode `bytes` as every message a node takes from the network: the
    /// bodies of `/raft/{append,vote,snapshot,forward}` and the answers a
    /// node reads back from its peers. A decode may fail; it must return.
    fn decode_as_every_message(bytes: &[u8]) {
        let _ = decode::<AppendEntriesRequest<TypeConfig>>(bytes);
        let _ = decode::<VoteRequest<NodeId>>(bytes);
        let _ = decode::<InstallSnapshotRequest<TypeConfig>>(bytes);
        let _ = decode::<Vec<Group>>(bytes);
        let _ = decode::<Forwarded>(bytes);
        let _ = decode::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(bytes);
        let _ = decode::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(bytes);
        let _ = decode::<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>>(bytes);
    }

    /// How a forged or corrupted body departs from a valid one.
    #[derive(Debug, TypeGenerator)]
    enum Mutation {
        Set {
            at: u16,
            byte: u8,
        },
        Truncate {
            at: u16,
        },
        Insert {
            at: u16,
            bytes: Vec<u8>,
        },
        /// A varint claiming 2^shift, where a length or a count may be read.
        HugeLength {
            at: u16,
            shift: u8,
        },
    }

    impl Mutation {
        fn apply(&self, body: &mut Vec<u8>) {
            let at = |i: u16| usize::from(i) % (body.len() + 1);
            match self {
                Mutation::Set { at: i, byte } => {
                    if let Some(b) = body.get_mut(usize::from(*i)) {
                        *b = *byte;
                    }
                }
                Mutation::Truncate { at: i } => body.truncate(at(*i)),
                Mutation::Insert { at: i, bytes } => {
                    let i = at(*i);
                    body.splice(i..i, bytes.iter().copied());
                }
                Mutation::HugeLength { at: i, shift } => {
                    let i = at(*i);
                    let len = 1u64.checked_shl(u32::from(*shift % 64)).unwrap_or(u64::MAX);
                    body.splice(i..i, length_prefix(len));
                }
            }
        }
    }

    #[derive(Debug, TypeGenerator)]
    enum Body {
        Raw(Vec<u8>),
        Mutated { sample: u8, mutations: Vec<Mutation> },
    }

    /// Fuzz target: no body, raw or a mutated valid message, makes a decoder
    /// panic or allocate past the limit (which would abort the test binary).
    #[test]
    fn raft_messages_decode_without_panic_or_unbounded_allocation() {
        let samples = samples();
        bolero::check!().with_type::<Body>().for_each(|body| match body {
            Body::Raw(bytes) => decode_as_every_message(bytes),
            Body::Mutated { sample, mutations } => {
                let mut bytes = samples[usize::from(*sample) % samples.len()].clone();
                for m in mutations {
                    m.apply(&mut bytes);
                }
                decode_as_every_message(&bytes);
            }
        });
    }

    #[test]
    fn every_sample_decodes_as_what_it_is() {
        let samples = samples();
        assert!(decode::<AppendEntriesRequest<TypeConfig>>(&samples[0]).is_ok());
        assert!(decode::<VoteRequest<NodeId>>(&samples[1]).is_ok());
        assert!(decode::<InstallSnapshotRequest<TypeConfig>>(&samples[2]).is_ok());
        assert_eq!(decode::<Vec<Group>>(&samples[3]).unwrap().len(), 2);
        assert!(decode::<Forwarded>(&samples[4]).unwrap().is_ok());
    }
}
