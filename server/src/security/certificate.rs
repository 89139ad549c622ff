//! The subject of a client that authenticated with a TLS certificate, as
//! RFC 2253 writes it (what Java's `X500Principal.getName()` gives, and so
//! what Kafka's `ssl.principal.mapping.rules` see, `principal_mapping`): the relative names last first, joined
//! by `,`, multi-valued ones by `+`, with the keywords Java knows (CN, C,
//! L, ST, O, OU, STREET, DC, UID) and dotted OIDs for others.
//!
//! The certificate was verified by rustls against the listener's client CA
//! before it gets here; x509-parser reads its subject.

use x509_parser::prelude::{FromDer, X509Certificate};

/// Java's RFC 2253 keywords, by OID.
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of the DER certificate `der`; `None` if it cannot be read.
pub fn subject(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type().to_id_string();
                let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| k.to_string());
                match (keyword, attr.as_str()) {
                    (Some(keyword), Ok(value)) => format!("{keyword}={}", escape(value)),
                    (None, Ok(value)) => format!("{oid}={}", escape(value)),
                    // Not a string Java would print as one: its bytes in hex.
                    (keyword, Err(_)) => format!("{}=#{}", keyword.unwrap_or(oid), hex(attr.as_slice())),
                }
            })
            .collect();
        names.push(parts.join("+"));
    }
    names.reverse();
    Some(names.join(","))
}

/// RFC 2253 section 2.4's escapes.
fn escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("alice"), "alice");
        assert_eq!(escape("Smith, John"), "Smith\\, John");
        assert_eq!(escape("#1 "), "\\#1\\ ");
        assert_eq!(escape("a+b=c;d<e>\"\\"), "a\\+b=c\\;d\\<e\\>\\\"\\\\");
        assert_eq!(subject(b"not a certificate"), None);
    }

    #[test]
    fn the_subject_is_written_last_name_first() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
        let mut params = CertificateParams::new(vec!["erin".to_string()]).unwrap();
        // In the certificate's order: C, then O, then CN.
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "NZ");
        params.distinguished_name.push(DnType::OrganizationName, "Ringtail, Inc.");
        params.distinguished_name.push(DnType::CommonName, "erin");
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(subject(cert.der()).as_deref(), Some("CN=erin,O=Ringtail\\, Inc.,C=NZ"));
    }
}
