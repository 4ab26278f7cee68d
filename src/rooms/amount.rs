//! `Amount`: a room counter's value, an exact decimal (SPEC §9: 0.1 + 0.2 is
//! `"0.3"`). Parsed from a JSON number's own text or a decimal string with
//! `rust_decimal`, added exactly on `i128` mantissas, and written without
//! trailing zeros. A value has at most [`MAX_DIGITS`] significant digits and
//! [`MAX_DIGITS`] fractional digits, so that every value fits
//! `rust_decimal` exactly; a sum that would need more is refused, never
//! rounded. The Redis store's Lua does the same arithmetic on digit strings
//! (`store/lua/common.lua`), and a test holds the two to the same answers.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Most digits of a counter value's mantissa (and most fractional digits).
pub const MAX_DIGITS: u32 = 28;
/// Longest accepted input text (a value written out, with sign and exponent).
const MAX_INPUT_CHARS: usize = 64;

/// An exact decimal with at most [`MAX_DIGITS`] digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amount(Decimal);

/// Why a counter value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a number.
    #[error("counter values are numbers or decimal strings such as \"17.75\"")]
    NotANumber,
    /// More digits than a counter holds.
    #[error("counter values have at most {MAX_DIGITS} digits")]
    OutOfRange,
}

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// One, what a `counter` frame without a value adds.
    pub const ONE: Self = Self(Decimal::ONE);

    /// Parses decimal text: `17.75`, `-15.14`, `+3`, `.5`, `1e3`. The text of
    /// a JSON number is taken as written, so no binary float is involved.
    ///
    /// # Errors
    /// [`AmountError::NotANumber`] for anything else (`NaN`, `1_000`, `""`),
    /// [`AmountError::OutOfRange`] past [`MAX_DIGITS`] digits.
    pub fn parse(raw: &str) -> Result<Self, AmountError> {
        let text = raw.trim();
        if text.len() > MAX_INPUT_CHARS || !is_decimal_syntax(text) {
            return Err(AmountError::NotANumber);
        }
        let unsigned = text.strip_prefix('+').unwrap_or(text);
        let parsed = if unsigned.contains(['e', 'E']) {
            Decimal::from_scientific(unsigned)
        } else {
            Decimal::from_str_exact(unsigned)
        };
        let value = parsed.map_err(|_| AmountError::OutOfRange)?;
        Self::checked(value.mantissa(), value.scale())
    }

    /// The exact sum, or [`AmountError::OutOfRange`] when it needs more than
    /// [`MAX_DIGITS`] digits.
    ///
    /// # Errors
    /// [`AmountError::OutOfRange`].
    pub fn checked_add(self, other: Self) -> Result<Self, AmountError> {
        let (a, b) = (self.0, other.0);
        let scale = a.scale().max(b.scale());
        let align = |d: Decimal| -> Option<i128> {
            10i128
                .checked_pow(scale - d.scale())
                .and_then(|f| d.mantissa().checked_mul(f))
        };
        let sum = align(a)
            .zip(align(b))
            .and_then(|(x, y)| x.checked_add(y))
            .ok_or(AmountError::OutOfRange)?;
        Self::checked(sum, scale)
    }

    /// Normalizes `mantissa × 10^-scale` and checks the digit bound.
    fn checked(mut mantissa: i128, mut scale: u32) -> Result<Self, AmountError> {
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        let limit = 10i128.pow(MAX_DIGITS);
        if scale > MAX_DIGITS || mantissa.unsigned_abs() >= limit.unsigned_abs() {
            return Err(AmountError::OutOfRange);
        }
        // Exact: |mantissa| < 10^28 < 2^96 and scale ≤ 28.
        Decimal::try_from_i128_with_scale(mantissa, scale)
            .map(Self)
            .map_err(|_| AmountError::OutOfRange)
    }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal_syntax(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int = digits(&mut i);
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = digits(&mut i);
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

impl fmt::Display for Amount {
    /// Plain decimal notation without trailing zeros (`"2.61"`, `"-3"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn a(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    fn sum(x: &str, y: &str) -> String {
        a(x).checked_add(a(y)).unwrap().to_string()
    }

    #[test]
    fn sums_are_exact_decimals() {
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("17.75", "-15.14"), "2.61");
        assert_eq!(sum("1442377.78", "0.22"), "1442378");
        assert_eq!(sum("-1", "1"), "0");
        assert_eq!(sum("0.5", "-0.75"), "-0.25");
    }

    #[test]
    fn numbers_and_strings_of_every_shape_parse() {
        for (text, want) in [
            ("17.75", "17.75"),
            ("+3", "3"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1e3", "1000"),
            ("-2.5E-2", "-0.025"),
            ("1.500", "1.5"),
            (" 7 ", "7"),
            ("-0", "0"),
        ] {
            assert_eq!(a(text).to_string(), want, "{text}");
        }
    }

    #[test]
    fn non_numbers_are_refused() {
        for text in [
            "", "abc", "NaN", "Infinity", "1_000", "1,5", "--1", "1e", ".", "e5", "0x10", "1 2",
        ] {
            assert_eq!(Amount::parse(text), Err(AmountError::NotANumber), "{text}");
        }
    }

    #[test]
    fn more_than_28_digits_is_out_of_range_and_never_rounded() {
        let max = "9".repeat(28);
        assert_eq!(a(&max).to_string(), max);
        assert_eq!(Amount::parse(&"9".repeat(29)), Err(AmountError::OutOfRange));
        assert_eq!(a(&max).checked_add(a("1")), Err(AmountError::OutOfRange));
        // 10^27 + 10^-28 needs 56 digits: refused rather than rounded to 10^27.
        let big = format!("1{}", "0".repeat(27));
        let tiny = format!("0.{}1", "0".repeat(27));
        assert_eq!(a(&big).checked_add(a(&tiny)), Err(AmountError::OutOfRange));
        assert_eq!(Amount::parse("1e40"), Err(AmountError::OutOfRange));
    }

    proptest! {
        #[test]
        fn addition_matches_integer_arithmetic_in_cents(x in -10i64.pow(15)..10i64.pow(15), y in -10i64.pow(15)..10i64.pow(15)) {
            let cents = |v: i64| format!("{}{}.{:02}", if v < 0 { "-" } else { "" }, v.unsigned_abs() / 100, v.unsigned_abs() % 100);
            let got = a(&cents(x)).checked_add(a(&cents(y))).unwrap();
            prop_assert_eq!(got, a(&cents(x + y)));
        }

        #[test]
        fn written_values_parse_back_to_themselves(m in any::<i64>(), scale in 0u32..=18) {
            let v = Amount::checked(i128::from(m), scale).unwrap();
            prop_assert_eq!(a(&v.to_string()), v);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = Amount::parse(&s);
        }
    }
}
