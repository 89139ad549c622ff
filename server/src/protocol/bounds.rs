//! A walk over a request body that checks every length in it against the
//! bytes that follow, before kafka-protocol decodes it.
//!
//! Why: kafka-protocol 0.18 sizes a decoded array with
//! `Vec::with_capacity(count)` straight from the wire, before reading a
//! single element. A 20-byte Metadata request declaring 2^31 topics asks
//! the allocator for over 100 GiB, and a failed allocation aborts the
//! process (it is not a panic that could be caught). Upstream fixes are open
//! (kafka-protocol-rs PRs #152, #161, #200); until one ships, no request
//! reaches the decoder unless this walk has proven that each array's
//! elements are really in the frame, and that the request as a whole
//! declares at most `elements_max` of them (a frame of 2-byte elements
//! would otherwise decode into structs of tens of bytes each).
//!
//! Every element takes at least one byte on the wire, so a count larger
//! than the bytes left is malformed, and rejecting it here loses nothing.

use super::schema::{Field, Ty};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("request ends inside a field at byte {at}")]
    Truncated { at: usize },
    #[error("array at byte {at} declares {declared} elements with {remaining} bytes left")]
    ArrayTooLong { at: usize, declared: u64, remaining: usize },
    #[error("request declares more than {max} array elements")]
    TooManyElements { max: usize },
    #[error("invalid length {length} at byte {at}")]
    BadLength { at: usize, length: i64 },
    #[error("varint at byte {at} is longer than 5 bytes")]
    BadVarint { at: usize },
}

/// Walks `body` as version `version` of a request with `fields`, in the
/// flexible encoding or not. Returns the bytes the body takes (a valid
/// request may be followed by bytes no field claims).
pub fn check(
    fields: &[Field],
    version: i16,
    flexible: bool,
    body: &[u8],
    elements_max: usize,
) -> Result<usize, BoundsError> {
    let mut walker = Walker { body, at: 0, version, flexible, elements: 0, elements_max };
    walker.structure(fields)?;
    Ok(walker.at)
}

/// Walks a whole request frame: the header of `header_version` (its tagged
/// fields decode into a map entry each, as the body's do), then the body as
/// `check` does, with one element budget for both. Returns the bytes the
/// header and body take.
pub fn check_frame(
    header_version: i16,
    fields: &[Field],
    version: i16,
    frame: &[u8],
    elements_max: usize,
) -> Result<usize, BoundsError> {
    let flexible = header_version >= 2;
    let mut walker = Walker { body: frame, at: 0, version, flexible, elements: 0, elements_max };
    walker.take(8)?; // api key, api version, correlation id
    if header_version >= 1 {
        // The client id keeps its 2-byte length in every header version.
        let at = walker.at;
        let length = i64::from(walker.int16()?);
        walker.sized(at, length)?;
    }
    if flexible {
        walker.tagged_fields()?;
    }
    walker.structure(fields)?;
    Ok(walker.at)
}

struct Walker<'a> {
    body: &'a [u8],
    at: usize,
    version: i16,
    flexible: bool,
    elements: usize,
    elements_max: usize,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.body.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], BoundsError> {
        if n > self.remaining() {
            return Err(BoundsError::Truncated { at: self.at });
        }
        let bytes = &self.body[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    fn int16(&mut self) -> Result<i16, BoundsError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn int32(&mut self) -> Result<i32, BoundsError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Kafka's unsigned varint: at most 5 bytes for a u32.
    fn uvarint(&mut self) -> Result<u32, BoundsError> {
        let start = self.at;
        let mut value: u64 = 0;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| BoundsError::BadVarint { at: start });
            }
        }
        Err(BoundsError::BadVarint { at: start })
    }

    fn structure(&mut self, fields: &[Field]) -> Result<(), BoundsError> {
        for field in fields {
            if (field.min..=field.max).contains(&self.version) {
                self.value(field.ty)?;
            }
        }
        if self.flexible {
            self.tagged_fields()?;
        }
        Ok(())
    }

    /// Tagged fields are skipped by their declared size. kafka-protocol
    /// decodes the few it knows in place instead (Fetch's `cluster_id`, a
    /// string), but in the implemented versions none of them holds an array,
    /// and the top-level request's tags end the body, so no array can hide
    /// behind a tag whose size lies. Each tag counts as an element: an
    /// unknown one becomes an entry of the decoded struct's map, tens of
    /// bytes for the two it takes on the wire.
    fn tagged_fields(&mut self) -> Result<(), BoundsError> {
        let at = self.at;
        let count = self.uvarint()?;
        // A tag and its size take a byte each at least.
        if u64::from(count) > self.remaining() as u64 / 2 {
            return Err(BoundsError::ArrayTooLong {
                at,
                declared: count.into(),
                remaining: self.remaining(),
            });
        }
        self.elements += count as usize;
        if self.elements > self.elements_max {
            return Err(BoundsError::TooManyElements { max: self.elements_max });
        }
        for _ in 0..count {
            self.uvarint()?; // tag
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    fn value(&mut self, ty: Ty) -> Result<(), BoundsError> {
        match ty {
            Ty::Int8 | Ty::Bool => self.take(1).map(drop),
            Ty::Int16 => self.take(2).map(drop),
            Ty::Int32 => self.take(4).map(drop),
            Ty::Int64 | Ty::Float64 => self.take(8).map(drop),
            Ty::Uuid => self.take(16).map(drop),
            Ty::Str => {
                let at = self.at;
                let length =
                    if self.flexible { i64::from(self.uvarint()?) - 1 } else { i64::from(self.int16()?) };
                self.sized(at, length)
            }
            Ty::Bytes => {
                let at = self.at;
                let length =
                    if self.flexible { i64::from(self.uvarint()?) - 1 } else { i64::from(self.int32()?) };
                self.sized(at, length)
            }
            Ty::Structs(fields) => {
                let count = self.array_count()?;
                (0..count).try_for_each(|_| self.structure(fields))
            }
            Ty::Array(element) => {
                let count = self.array_count()?;
                (0..count).try_for_each(|_| self.value(*element))
            }
        }
    }

    /// A string or bytes of `length` (-1 for null).
    fn sized(&mut self, at: usize, length: i64) -> Result<(), BoundsError> {
        match length {
            -1 => Ok(()),
            n if n < 0 => Err(BoundsError::BadLength { at, length }),
            n => self.take(n as usize).map(drop),
        }
    }

    /// An array's element count (0 for null), checked against the bytes
    /// left and the request's element budget.
    fn array_count(&mut self) -> Result<usize, BoundsError> {
        let at = self.at;
        let declared = if self.flexible { i64::from(self.uvarint()?) - 1 } else { i64::from(self.int32()?) };
        let count = match declared {
            -1 => return Ok(0),
            n if n < 0 => return Err(BoundsError::BadLength { at, length: n }),
            n => n as u64,
        };
        if count > self.remaining() as u64 {
            return Err(BoundsError::ArrayTooLong { at, declared: count, remaining: self.remaining() });
        }
        self.elements += count as usize;
        if self.elements > self.elements_max {
            return Err(BoundsError::TooManyElements { max: self.elements_max });
        }
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::request_fields;
    use super::*;
    use kafka_protocol::messages::ApiKey;

    const ELEMENTS_MAX: usize = 1000;

    #[test]
    fn a_huge_array_count_is_refused_before_decoding() {
        // Metadata v0 declaring 2^31 - 1 topics in a 4-byte body.
        let body = i32::MAX.to_be_bytes();
        let fields = request_fields(ApiKey::Metadata).unwrap();
        let err = check(fields, 0, false, &body, ELEMENTS_MAX).unwrap_err();
        assert_eq!(err, BoundsError::ArrayTooLong { at: 0, declared: i32::MAX as u64, remaining: 0 });
    }

    #[test]
    fn a_huge_compact_array_count_is_refused() {
        // Metadata v9: compact array count 2^32 - 1 (varint ff ff ff ff 0f).
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
        let fields = request_fields(ApiKey::Metadata).unwrap();
        assert!(matches!(check(fields, 9, true, &body, ELEMENTS_MAX), Err(BoundsError::ArrayTooLong { .. })));
    }

    #[test]
    fn the_element_budget_spans_the_whole_request() {
        // Metadata v0 with 1200 empty-named topics: over a budget of 1000,
        // within one of 2000.
        let mut body = 1200i32.to_be_bytes().to_vec();
        for _ in 0..1200 {
            body.extend_from_slice(&0i16.to_be_bytes());
        }
        let fields = request_fields(ApiKey::Metadata).unwrap();
        assert_eq!(
            check(fields, 0, false, &body, ELEMENTS_MAX),
            Err(BoundsError::TooManyElements { max: 1000 })
        );
        assert_eq!(check(fields, 0, false, &body, 2000), Ok(body.len()));
    }

    #[test]
    fn negative_lengths_other_than_null_are_refused() {
        let fields = request_fields(ApiKey::Metadata).unwrap();
        let body = (-2i32).to_be_bytes();
        assert!(matches!(check(fields, 1, false, &body, ELEMENTS_MAX), Err(BoundsError::BadLength { .. })));
        // -1 is a null array: all topics.
        assert_eq!(check(fields, 1, false, &(-1i32).to_be_bytes(), ELEMENTS_MAX), Ok(4));
    }

    /// Tagged fields count against the element budget, in the header as in
    /// the body, and a tag count beyond the bytes left is refused.
    #[test]
    fn tagged_fields_count_as_elements_in_the_header_and_the_body() {
        let fields = request_fields(ApiKey::Metadata).unwrap();
        let tags = |n: usize| {
            let mut out = Vec::new();
            let mut count = n as u32;
            while count >= 0x80 {
                out.push((count as u8) | 0x80);
                count >>= 7;
            }
            out.push(count as u8);
            for i in 0..n {
                out.extend_from_slice(&[(i % 100 + 10) as u8, 0]); // tag, size 0
            }
            out
        };
        // Header v2: api key, version, correlation id, null client id, tags.
        let header = |n: usize| {
            let mut h = vec![0, 3, 0, 9, 0, 0, 0, 7, 0xff, 0xff];
            h.extend(tags(n));
            h
        };
        // Metadata v9 body: null topics (0), allow auto creation, include
        // cluster and topic authorized operations, then tags.
        let body = |n: usize| {
            let mut b = vec![0, 1, 0, 0];
            b.extend(tags(n));
            b
        };
        let frame = |h: usize, b: usize| [header(h), body(b)].concat();
        let ok = frame(400, 400);
        assert_eq!(check_frame(2, fields, 9, &ok, ELEMENTS_MAX), Ok(ok.len()));
        let too_many = [frame(600, 401), frame(1001, 0), frame(0, 1001)];
        for f in too_many {
            assert_eq!(
                check_frame(2, fields, 9, &f, ELEMENTS_MAX),
                Err(BoundsError::TooManyElements { max: 1000 })
            );
        }
        // A count of 2^28 tags in a few bytes.
        let lying =
            [vec![0, 3, 0, 9, 0, 0, 0, 7, 0xff, 0xff], vec![0x80, 0x80, 0x80, 0x80, 0x01, 0, 0]].concat();
        assert!(matches!(
            check_frame(2, fields, 9, &lying, ELEMENTS_MAX),
            Err(BoundsError::ArrayTooLong { .. })
        ));
    }

    #[test]
    fn overlong_varints_are_refused() {
        let fields = request_fields(ApiKey::Metadata).unwrap();
        let body = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(check(fields, 9, true, &body, ELEMENTS_MAX), Err(BoundsError::BadVarint { at: 0 }));
    }
}
