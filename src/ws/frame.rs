//! RFC 6455 rules for a client frame that actix-http's parser leaves out,
//! checked on the frame's first bytes before its payload is waited for:
//! reserved bits, reserved opcodes, the mask, control frames that are
//! fragmented or longer than 125 bytes, a 64-bit length with its top bit
//! set. Also the close frame's payload (code and UTF-8 reason), which the
//! parser only reads lossily. Pure; `reader` uses it on every frame.

/// A frame's opcode (RFC 6455 §5.2), reserved ones excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// 0x0: continues a fragmented message.
    Continue,
    /// 0x1: a text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl Op {
    fn parse(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continue,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// What a client frame's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The FIN bit: the last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub op: Op,
    /// The payload length.
    pub len: u64,
}

/// A frame header that breaks RFC 6455 (close 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// RSV1–3 set, with no extension negotiated (§5.2).
    #[error("reserved bits set")]
    ReservedBits,
    /// Opcodes 0x3–0x7 and 0xB–0xF are reserved (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// Client frames must be masked (§5.1).
    #[error("unmasked client frame")]
    Unmasked,
    /// Control frames must not be fragmented (§5.5).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// Control frames carry at most 125 bytes (§5.5).
    #[error("control frame over 125 bytes")]
    LongControl,
    /// A 64-bit length's most significant bit must be 0 (§5.2).
    #[error("64-bit length with its top bit set")]
    LengthTopBit,
}

/// Reads and checks a client frame's header from the start of `bytes`;
/// `Ok(None)` until enough bytes are there to say.
///
/// # Errors
/// [`HeaderError`] for a header that breaks RFC 6455.
pub fn peek(bytes: &[u8]) -> Result<Option<Header>, HeaderError> {
    let [first, second, rest @ ..] = bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(HeaderError::ReservedBits);
    }
    let op = Op::parse(first & 0x0F).ok_or(HeaderError::ReservedOpcode(first & 0x0F))?;
    let fin = first & 0x80 != 0;
    if second & 0x80 == 0 {
        return Err(HeaderError::Unmasked);
    }
    let len7 = second & 0x7F;
    if op.is_control() {
        if !fin {
            return Err(HeaderError::FragmentedControl);
        }
        if len7 > 125 {
            return Err(HeaderError::LongControl);
        }
    }
    let len = match len7 {
        126 => match rest {
            [a, b, ..] => u64::from(u16::from_be_bytes([*a, *b])),
            _ => return Ok(None),
        },
        127 => match rest.first_chunk::<8>() {
            Some(eight) => {
                let len = u64::from_be_bytes(*eight);
                if len >> 63 != 0 {
                    return Err(HeaderError::LengthTopBit);
                }
                len
            }
            None => return Ok(None),
        },
        n => u64::from(n),
    };
    Ok(Some(Header { fin, op, len }))
}

/// A close frame payload that breaks RFC 6455 (§5.5.1, §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    /// One byte cannot hold a status code (close 1002).
    #[error("close payload of one byte")]
    OneByte,
    /// A code that may not be sent in a close frame (close 1002).
    #[error("invalid close code {0}")]
    InvalidCode(u16),
    /// The reason is not UTF-8 (close 1007).
    #[error("close reason is not UTF-8")]
    ReasonNotUtf8,
}

/// Whether `code` may arrive in a close frame: the codes RFC 6455 §7.4.1
/// defines for sending (1000–1003, 1007–1011), those IANA registered since
/// (1012–1014), and the ranges for libraries and applications (3000–4999).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The status code of a client's close frame (`None` for an empty payload).
///
/// # Errors
/// [`CloseError`] for a payload that breaks the rules.
pub fn close_code(payload: &[u8]) -> Result<Option<u16>, CloseError> {
    let (code, reason) = match payload {
        [] => return Ok(None),
        [_] => return Err(CloseError::OneByte),
        [a, b, reason @ ..] => (u16::from_be_bytes([*a, *b]), reason),
    };
    if !is_valid_close_code(code) {
        return Err(CloseError::InvalidCode(code));
    }
    if std::str::from_utf8(reason).is_err() {
        return Err(CloseError::ReasonNotUtf8);
    }
    Ok(Some(code))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A masked header for `op` bits with FIN `fin` and a `len7` length field.
    fn head(fin: bool, op: u8, len7: u8) -> Vec<u8> {
        vec![if fin { 0x80 } else { 0 } | op, 0x80 | len7]
    }

    #[test]
    fn short_input_waits() {
        assert_eq!(peek(&[]), Ok(None));
        assert_eq!(peek(&[0x81]), Ok(None));
        assert_eq!(peek(&[0x81, 0x80 | 126, 0]), Ok(None));
        assert_eq!(peek(&[0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0]), Ok(None));
    }

    #[test]
    fn lengths_in_all_three_encodings_are_read() {
        let h = peek(&head(true, 1, 125)).unwrap().unwrap();
        assert_eq!((h.fin, h.op, h.len), (true, Op::Text, 125));
        let mut two = head(false, 2, 126);
        two.extend_from_slice(&300u16.to_be_bytes());
        let h = peek(&two).unwrap().unwrap();
        assert_eq!((h.fin, h.op, h.len), (false, Op::Binary, 300));
        let mut eight = head(true, 0, 127);
        eight.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(peek(&eight).unwrap().unwrap().len, 1 << 40);
    }

    #[test]
    fn each_header_rule_is_enforced() {
        for rsv in [0x10, 0x20, 0x40, 0x70] {
            assert_eq!(
                peek(&[0x81 | rsv, 0x80]),
                Err(HeaderError::ReservedBits),
                "{rsv:#x}"
            );
        }
        for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                peek(&head(true, op, 0)),
                Err(HeaderError::ReservedOpcode(op))
            );
        }
        assert_eq!(peek(&[0x81, 0x05]), Err(HeaderError::Unmasked));
        for op in [8, 9, 0xA] {
            assert_eq!(
                peek(&head(false, op, 0)),
                Err(HeaderError::FragmentedControl)
            );
            assert_eq!(peek(&head(true, op, 126)), Err(HeaderError::LongControl));
            assert!(peek(&head(true, op, 125)).unwrap().is_some());
        }
        let mut top = head(true, 1, 127);
        top.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(peek(&top), Err(HeaderError::LengthTopBit));
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(close_code(b""), Ok(None));
        assert_eq!(close_code(&[3]), Err(CloseError::OneByte));
        assert_eq!(close_code(&1000u16.to_be_bytes()), Ok(Some(1000)));
        let mut reason = 4000u16.to_be_bytes().to_vec();
        reason.extend_from_slice("κόσμε".as_bytes());
        assert_eq!(close_code(&reason), Ok(Some(4000)));
        reason.push(0xFF);
        assert_eq!(close_code(&reason), Err(CloseError::ReasonNotUtf8));
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                close_code(&u16::to_be_bytes(code)),
                Err(CloseError::InvalidCode(code))
            );
        }
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert_eq!(close_code(&u16::to_be_bytes(code)), Ok(Some(code)));
        }
    }

    proptest! {
        #[test]
        fn peek_never_panics_and_only_accepts_what_the_rfc_allows(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(Some(h)) = peek(&bytes) {
                prop_assert_eq!(bytes[0] & 0x70, 0);
                prop_assert!(bytes[1] & 0x80 != 0);
                prop_assert!(h.len < 1 << 63);
                if h.op.is_control() {
                    prop_assert!(h.fin && h.len <= 125);
                }
            }
        }

        #[test]
        fn a_longer_input_never_changes_the_answer(bytes in proptest::collection::vec(any::<u8>(), 0..16), more in proptest::collection::vec(any::<u8>(), 0..16)) {
            let short = peek(&bytes);
            let mut long = bytes.clone();
            long.extend_from_slice(&more);
            if short != Ok(None) {
                prop_assert_eq!(short, peek(&long));
            }
        }

        #[test]
        fn close_code_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..130)) {
            if let Ok(Some(code)) = close_code(&bytes) {
                prop_assert!(is_valid_close_code(code));
            }
        }
    }
}
