//! The floating-point codes of IGMPv3 and MLDv2: Max Resp Code and QQIC (RFC 9776 §4.1.1,
//! §4.1.7; RFC 9777 §5.1.3, §5.1.9). The one place that decodes and encodes them, for the
//! protocol core, the tools and the tests alike.

/// Decodes an 8-bit Max Resp Code or QQIC (RFC 9776 §4.1.1, §4.1.7; RFC 9777 §5.1.9).
///
/// Below 128 the code is the value; otherwise it is a float with a 3-bit exponent and a
/// 4-bit mantissa with an implicit leading bit.
pub fn decode_code8(code: u8) -> u32 {
    if code < 0x80 {
        u32::from(code)
    } else {
        let mantissa = u32::from(code & 0x0f);
        let exponent = u32::from((code >> 4) & 0x07);
        (mantissa | 0x10) << (exponent + 3)
    }
}

/// Encodes a value as an 8-bit Max Resp Code or QQIC: exact below 128, otherwise the largest
/// representable value not above `value` (so a response is never scheduled later than asked
/// for), saturating at 0xff (31744).
pub fn encode_code8(value: u32) -> u8 {
    encode_float(value, 4, 0xff) as u8
}

/// Decodes a 16-bit MLDv2 Maximum Response Code (RFC 9777 §5.1.3): below 32768 the value in
/// milliseconds, otherwise a float with a 3-bit exponent and a 12-bit mantissa.
pub fn decode_code16(code: u16) -> u32 {
    if code < 0x8000 {
        u32::from(code)
    } else {
        let mantissa = u32::from(code & 0x0fff);
        let exponent = u32::from((code >> 12) & 0x07);
        (mantissa | 0x1000) << (exponent + 3)
    }
}

/// Encodes a value as a 16-bit MLDv2 Maximum Response Code: exact below 32768, otherwise the
/// largest representable value not above `value`, saturating at 0xffff (8387584).
pub fn encode_code16(value: u32) -> u16 {
    encode_float(value, 12, 0xffff) as u16
}

/// Shared encoder of both float formats: `1 | exp(3) | mant(m)` with an implicit leading
/// mantissa bit, value = (mant | 1 << m) << (exp + 3); plain values below 1 << (m + 3).
fn encode_float(value: u32, mantissa_bits: u32, max_code: u32) -> u32 {
    let exact_limit = 1u32 << (mantissa_bits + 3);
    if value < exact_limit {
        return value;
    }
    // Position of the implicit leading bit minus its position at exponent 0.
    let exponent = (31 - value.leading_zeros()) - (mantissa_bits + 3);
    if exponent > 7 {
        return max_code;
    }
    let mantissa = (value >> (exponent + 3)) & ((1 << mantissa_bits) - 1);
    (1 << (mantissa_bits + 3)) | (exponent << mantissa_bits) | mantissa
}
